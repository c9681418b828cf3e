"""``tokensmith clients``: list the client registrations, or print a new one for the configuration file.

Clients are configuration (data in the YAML file, reviewed like code), not rows an API mutates. So ``list`` reads
the file and ``new`` prints a validated YAML block to paste under ``clients:``. A generated client secret is printed
once, on standard error, and only its ``{argon2}`` hash goes in the block.
"""

from __future__ import annotations

import secrets
from typing import Annotated, Any

import typer
import yaml
from pydantic import ValidationError

from tokensmith.cli.common import ConfigOption, fail, load_or_exit
from tokensmith.cli.passwords import password_hasher
from tokensmith.config.server import AUTHORIZATION_CODE, GRANT_TYPES, ClientConfig

clients_app = typer.Typer(help="List client registrations, or print a new one for the config file.")


@clients_app.command("list")
def clients_list(config: ConfigOption = None) -> None:
    """One line per client: id, authentication methods, grant types, scopes."""
    settings = load_or_exit(config)
    if not settings.clients:
        typer.echo("no clients configured")
        return
    for name, client in settings.clients.items():
        reg = client.registration
        grants = ",".join(reg.authorization_grant_types)
        typer.echo(
            f"{reg.client_id}  ({name})  auth={','.join(reg.client_authentication_methods)}  "
            f"grants={grants}  scopes={' '.join(reg.scopes) or '-'}"
        )


@clients_app.command("new")
def clients_new(
    client_id: Annotated[str, typer.Option("--client-id", help="The new client's id.")],
    grant_types: Annotated[
        list[str], typer.Option("--grant-type", help=f"Repeatable. One of: {', '.join(GRANT_TYPES)}.")
    ],
    scopes: Annotated[list[str] | None, typer.Option("--scope", help="Repeatable.")] = None,
    redirect_uris: Annotated[list[str] | None, typer.Option("--redirect-uri", help="Repeatable.")] = None,
    public: Annotated[
        bool, typer.Option("--public", help="A public client (no secret; PKCE is then required).")
    ] = False,
    auth_method: Annotated[
        str, typer.Option("--auth-method", help="client_secret_basic or client_secret_post.")
    ] = "client_secret_basic",
) -> None:
    """Print a validated client block for the config file; a generated secret goes to stderr, once."""
    secret: str | None = None
    registration: dict[str, Any] = {"client-id": client_id}
    if public:
        registration["client-authentication-methods"] = ["none"]
    else:
        secret = secrets.token_urlsafe(32)
        registration["client-secret"] = password_hasher()(secret)
        registration["client-authentication-methods"] = [auth_method]
    registration["authorization-grant-types"] = list(grant_types)
    if redirect_uris:
        registration["redirect-uris"] = list(redirect_uris)
    if scopes:
        registration["scopes"] = list(scopes)
    body: dict[str, Any] = {"registration": registration}
    if public and AUTHORIZATION_CODE in grant_types:
        body["require-proof-key"] = True
    try:
        ClientConfig.model_validate(body)
    except ValidationError as exc:
        problems = "; ".join(
            f"{'.'.join(str(p) for p in e['loc'])}: {e['msg'].removeprefix('Value error, ')}" for e in exc.errors()
        )
        raise fail(f"that client would not be valid: {problems}") from None
    typer.echo(yaml.safe_dump({"clients": {client_id: body}}, sort_keys=False), nl=False)
    if secret is not None:
        typer.echo(f"client secret for {client_id} (shown once, store it now): {secret}", err=True)
