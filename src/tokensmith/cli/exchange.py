"""``tokensmith exchange``: an RFC 8693 token exchange from the shell, against any authorization server that
publishes its metadata."""

from __future__ import annotations

import base64
import json
import sys
from typing import Annotated, Any
from urllib.parse import quote_plus

import httpx
import typer

from tokensmith.cli.common import fail
from tokensmith.config.exchange import ACCESS_TOKEN_TYPE
from tokensmith.config.server import TOKEN_EXCHANGE

DISCOVERY_PATHS = ("/.well-known/oauth-authorization-server", "/.well-known/openid-configuration")


def _token_argument(value: str) -> str:
    """``-`` reads the token from standard input, so it stays out of the shell history."""
    return sys.stdin.readline().strip() if value == "-" else value


def _token_endpoint(http: httpx.Client, server: str) -> str:
    base = server.rstrip("/")
    for path in DISCOVERY_PATHS:
        try:
            response = http.get(base + path)
        except httpx.HTTPError as exc:
            raise fail(f"cannot reach {base}: {exc}") from None
        if response.status_code != 200:
            continue
        metadata = response.json()
        endpoint = metadata.get("token_endpoint") if isinstance(metadata, dict) else None
        if isinstance(endpoint, str):
            grants = metadata.get("grant_types_supported")
            if isinstance(grants, list) and TOKEN_EXCHANGE not in grants:
                typer.echo(f"warning: {base} does not list the token-exchange grant", err=True)
            return endpoint
    raise fail(f"{base} publishes no authorization server metadata ({', '.join(DISCOVERY_PATHS)})")


def _decoded_claims(token: str) -> dict[str, Any] | None:
    """The payload of a JWT, for display only (not verified)."""
    parts = token.split(".")
    if len(parts) != 3:
        return None
    try:
        claims = json.loads(base64.urlsafe_b64decode(parts[1] + "=" * (-len(parts[1]) % 4)))
    except ValueError:
        return None
    return claims if isinstance(claims, dict) else None


def exchange_command(
    server: Annotated[str, typer.Argument(help="The authorization server's issuer URL, e.g. http://localhost:9001.")],
    client_id: Annotated[str, typer.Option("--client-id", help="The requesting client.")],
    client_secret: Annotated[
        str, typer.Option("--client-secret", envvar="TOKENSMITH_CLIENT_SECRET", help="Its secret (or set the env var).")
    ],
    subject_token: Annotated[str, typer.Option("--subject-token", help="The token to exchange; '-' reads stdin.")],
    subject_token_type: Annotated[str, typer.Option("--subject-token-type")] = ACCESS_TOKEN_TYPE,
    actor_token: Annotated[str | None, typer.Option("--actor-token", help="For delegation; '-' reads stdin.")] = None,
    actor_token_type: Annotated[str, typer.Option("--actor-token-type")] = ACCESS_TOKEN_TYPE,
    audience: Annotated[list[str] | None, typer.Option("--audience", help="Repeatable.")] = None,
    resource: Annotated[list[str] | None, typer.Option("--resource", help="Repeatable; absolute URI.")] = None,
    scope: Annotated[str | None, typer.Option("--scope", help="Space-separated scopes.")] = None,
    requested_token_type: Annotated[str | None, typer.Option("--requested-token-type")] = None,
    auth_method: Annotated[
        str, typer.Option("--auth-method", help="client_secret_basic or client_secret_post.")
    ] = "client_secret_basic",
    decode: Annotated[bool, typer.Option("--decode", help="Also print the issued token's claims.")] = False,
) -> None:
    """Perform an RFC 8693 token exchange and print the token response as JSON."""
    if auth_method not in ("client_secret_basic", "client_secret_post"):
        raise fail("--auth-method must be client_secret_basic or client_secret_post")
    form: dict[str, str | list[str]] = {
        "grant_type": TOKEN_EXCHANGE,
        "subject_token": _token_argument(subject_token),
        "subject_token_type": subject_token_type,
    }
    if actor_token is not None:
        form.update(actor_token=_token_argument(actor_token), actor_token_type=actor_token_type)
    if audience:
        form["audience"] = list(audience)  # repeated parameters (RFC 8693 2.1)
    if resource:
        form["resource"] = list(resource)
    if scope:
        form["scope"] = scope
    if requested_token_type:
        form["requested_token_type"] = requested_token_type
    headers = {"Accept": "application/json"}
    if auth_method == "client_secret_basic":
        # RFC 6749 2.3.1: id and secret are form-encoded before Basic encoding.
        raw = f"{quote_plus(client_id)}:{quote_plus(client_secret)}".encode()
        headers["Authorization"] = "Basic " + base64.b64encode(raw).decode("ascii")
    else:
        form.update(client_id=client_id, client_secret=client_secret)
    with httpx.Client(timeout=10.0) as http:
        endpoint = _token_endpoint(http, server)
        try:
            response = http.post(endpoint, data=form, headers=headers)
        except httpx.HTTPError as exc:
            raise fail(f"token request failed: {exc}") from None
    try:
        body = response.json()
    except ValueError:
        raise fail(f"{endpoint} answered {response.status_code} without JSON") from None
    if response.status_code != 200 or not isinstance(body, dict) or "access_token" not in body:
        error = body.get("error", "unknown_error") if isinstance(body, dict) else "unknown_error"
        description = body.get("error_description", "") if isinstance(body, dict) else ""
        raise fail(f"{error}: {description}" if description else str(error))
    typer.echo(json.dumps(body, indent=2))
    if decode:
        claims = _decoded_claims(str(body["access_token"]))
        if claims is not None:
            typer.echo(json.dumps(claims, indent=2))
