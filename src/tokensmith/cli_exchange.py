"""``tokensmith audit`` (the token-exchange audit trail) and ``tokensmith exchange`` (an RFC 8693 exchange from
the shell, against any authorization server that publishes its metadata).

Registered in ``tokensmith.cli.PLUGIN_COMMANDS``."""

from __future__ import annotations

import asyncio
import base64
import json
import sys
from collections.abc import Sequence
from pathlib import Path
from typing import Annotated, Any
from urllib.parse import quote_plus

import httpx
import typer

from tokensmith.config.exchange import ACCESS_TOKEN_TYPE
from tokensmith.config.loader import load_config
from tokensmith.config.server import TOKEN_EXCHANGE
from tokensmith.errors import ConfigError
from tokensmith.store.records import AuditEvent

DISCOVERY_PATHS = ("/.well-known/oauth-authorization-server", "/.well-known/openid-configuration")


def _fail(message: str) -> typer.Exit:
    typer.echo(f"error: {message}", err=True)
    return typer.Exit(code=1)


# --- tokensmith audit ---------------------------------------------------------------------------------------


async def _read_events(database_url: str, limit: int) -> Sequence[AuditEvent]:
    # Imported here: the store pulls in SQLAlchemy, which only the server extra installs.
    from tokensmith.store import opened_store

    async with opened_store(database_url) as store:
        return await store.list_audit_events(limit=limit)


def _event_dict(event: AuditEvent) -> dict[str, Any]:
    return {
        "occurred_at": event.occurred_at.isoformat(),
        "event": event.event,
        "outcome": event.outcome,
        "client_id": event.client_id,
        "subject": event.subject,
        "actor": event.actor,
        "audience": list(event.audience),
        "scope": list(event.scope),
        "reason": event.reason,
        "details": event.details,
    }


def _event_line(event: AuditEvent) -> str:
    parts = [
        event.occurred_at.strftime("%Y-%m-%dT%H:%M:%SZ"),
        f"{event.outcome:<8}",
        f"client={event.client_id or '-'}",
        f"subject={event.subject or '-'}",
    ]
    if event.actor:
        parts.append(f"actor={event.actor}")
    parts.append(f"aud={','.join(event.audience) or '-'}")
    parts.append(f"scope={' '.join(event.scope) or '-'}")
    if event.reason:
        parts.append(f"reason={event.reason!r}")
    return "  ".join(parts)


def audit_command(
    config: Annotated[
        Path | None,
        typer.Option(
            "--config", "-c", envvar="TOKENSMITH_CONFIG", help="Server configuration file (for its database-url)."
        ),
    ] = None,
    database_url: Annotated[
        str | None, typer.Option("--database-url", help="Read this database instead of the config's.")
    ] = None,
    limit: Annotated[int, typer.Option("--limit", "-n", min=1, max=10000, help="How many events, newest first.")] = 50,
    outcome: Annotated[
        str | None, typer.Option("--outcome", help="Only events with this outcome: granted, refused or failed.")
    ] = None,
    as_json: Annotated[bool, typer.Option("--json", help="One JSON object per line.")] = False,
) -> None:
    """List token-exchange audit events: who asked, for whom, acting as whom, audience, scope, outcome, reason."""
    if database_url is None:
        try:
            database_url = load_config(config).database_url
        except ConfigError as exc:
            raise _fail(str(exc)) from None
    try:
        events = asyncio.run(_read_events(database_url, limit))
    except (OSError, ValueError) as exc:
        raise _fail(f"cannot read the audit events: {exc}") from None
    for event in events:
        if outcome is not None and event.outcome != outcome:
            continue
        typer.echo(json.dumps(_event_dict(event)) if as_json else _event_line(event))


# --- tokensmith exchange ------------------------------------------------------------------------------------


def _token_argument(value: str) -> str:
    """``-`` reads the token from standard input, so it stays out of the shell history."""
    return sys.stdin.readline().strip() if value == "-" else value


def _token_endpoint(http: httpx.Client, server: str) -> str:
    base = server.rstrip("/")
    for path in DISCOVERY_PATHS:
        try:
            response = http.get(base + path)
        except httpx.HTTPError as exc:
            raise _fail(f"cannot reach {base}: {exc}") from None
        if response.status_code != 200:
            continue
        metadata = response.json()
        endpoint = metadata.get("token_endpoint") if isinstance(metadata, dict) else None
        if isinstance(endpoint, str):
            grants = metadata.get("grant_types_supported")
            if isinstance(grants, list) and TOKEN_EXCHANGE not in grants:
                typer.echo(f"warning: {base} does not list the token-exchange grant", err=True)
            return endpoint
    raise _fail(f"{base} publishes no authorization server metadata ({', '.join(DISCOVERY_PATHS)})")


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
        raise _fail("--auth-method must be client_secret_basic or client_secret_post")
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
            raise _fail(f"token request failed: {exc}") from None
    try:
        body = response.json()
    except ValueError:
        raise _fail(f"{endpoint} answered {response.status_code} without JSON") from None
    if response.status_code != 200 or not isinstance(body, dict) or "access_token" not in body:
        error = body.get("error", "unknown_error") if isinstance(body, dict) else "unknown_error"
        description = body.get("error_description", "") if isinstance(body, dict) else ""
        raise _fail(f"{error}: {description}" if description else str(error))
    typer.echo(json.dumps(body, indent=2))
    if decode:
        claims = _decoded_claims(str(body["access_token"]))
        if claims is not None:
            typer.echo(json.dumps(claims, indent=2))
