"""``tokensmith users``: list the users, or print a new one for the configuration file.

Users are configuration, like clients: ``new`` prints a validated YAML block to paste under ``users:``, the password
hashed with argon2id.
"""

from __future__ import annotations

from typing import Annotated, Any

import typer
import yaml
from pydantic import ValidationError

from tokensmith.cli.common import ConfigOption, fail, load_or_exit
from tokensmith.cli.passwords import password_hasher, read_password
from tokensmith.config.server import UserConfig

users_app = typer.Typer(help="List users, or print a new one (with a hashed password) for the config file.")


@users_app.command("list")
def users_list(config: ConfigOption = None) -> None:
    """One line per user: username and the names of their claims (never password hashes)."""
    settings = load_or_exit(config)
    if not settings.users:
        typer.echo("no users configured")
        return
    for user in settings.users:
        claims = ", ".join(sorted(user.claims)) or "-"
        typer.echo(f"{user.username}  claims: {claims}")


@users_app.command("new")
def users_new(
    username: Annotated[str, typer.Option("--username", help="The new user's name (their `sub`).")],
    claims: Annotated[
        list[str] | None, typer.Option("--claim", help="Repeatable NAME=VALUE, e.g. --claim email=a@b.example")
    ] = None,
    stdin: Annotated[bool, typer.Option("--stdin", help="Read the password from standard input.")] = False,
) -> None:
    """Print a validated user block for the config file, the password hashed with argon2id."""
    parsed: dict[str, str] = {}
    for claim in claims or []:
        name, sep, value = claim.partition("=")
        if not sep or not name:
            raise fail(f"--claim {claim!r} must be NAME=VALUE")
        parsed[name] = value
    body: dict[str, Any] = {"username": username, "password": password_hasher()(read_password(stdin))}
    if parsed:
        body["claims"] = parsed
    try:
        UserConfig.model_validate(body)
    except ValidationError as exc:
        raise fail(f"that user would not be valid: {exc.errors()[0]['msg']}") from None
    typer.echo(yaml.safe_dump({"users": [body]}, sort_keys=False), nl=False)
