"""The ``tokensmith`` command: the root here, one module per command or command group.

Every module imports only the base install at import time; a command that needs an extra (``serve`` and the
database commands need ``[server]``, ``demo`` needs ``[demo]``) imports it when it runs and says which extra is
missing, so ``pip install tokensmith`` alone still has a working ``tokensmith --help``.
"""

from __future__ import annotations

from typing import Annotated

import typer

from tokensmith import __version__
from tokensmith.cli.audit import audit_command
from tokensmith.cli.bench import bench
from tokensmith.cli.clients import clients_app
from tokensmith.cli.config import config_app
from tokensmith.cli.conformance import conformance_app
from tokensmith.cli.demo import demo
from tokensmith.cli.exchange import exchange_command
from tokensmith.cli.keys import keys_app
from tokensmith.cli.passwords import hash_password_command
from tokensmith.cli.purge import purge
from tokensmith.cli.serve import serve
from tokensmith.cli.users import users_app

app = typer.Typer(
    name="tokensmith",
    help="An OAuth 2.0 / OpenID Connect authorization server with first-class Token Exchange (RFC 8693).",
    no_args_is_help=True,
    add_completion=False,
    pretty_exceptions_enable=False,
)


def _version(value: bool) -> None:
    if value:
        typer.echo(f"tokensmith {__version__}")
        raise typer.Exit()


@app.callback()
def main_options(
    version: Annotated[
        bool, typer.Option("--version", callback=_version, is_eager=True, help="Print the version.")
    ] = False,
) -> None:
    """tokensmith: run the authorization server and manage its configuration and keys."""


app.command("serve")(serve)
app.command("purge")(purge)
app.command("hash-password")(hash_password_command)
app.command("demo")(demo)
app.command("bench")(bench)
app.command("audit")(audit_command)
app.command("exchange")(exchange_command)
app.add_typer(config_app, name="config")
app.add_typer(conformance_app, name="conformance")
app.add_typer(keys_app, name="keys")
app.add_typer(clients_app, name="clients")
app.add_typer(users_app, name="users")


def main() -> None:
    app()
