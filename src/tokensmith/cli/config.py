"""``tokensmith config check``: validate a configuration file."""

from __future__ import annotations

from pathlib import Path
from typing import Annotated

import typer

from tokensmith.cli.common import load_or_exit

config_app = typer.Typer(help="Check configuration files.", no_args_is_help=True)


@config_app.command("check")
def config_check(path: Annotated[Path, typer.Argument(help="The YAML configuration file.")]) -> None:
    """Validate a configuration file: print OK, or the one-line problem and exit 1."""
    settings = load_or_exit(path)
    typer.echo(f"OK: {path} ({len(settings.clients)} clients, {len(settings.users)} users, issuer {settings.issuer})")
