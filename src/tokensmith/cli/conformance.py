"""``tokensmith conformance exchange``: check any authorization server's RFC 8693 token exchange from outside."""

from __future__ import annotations

import json
import sys
from typing import Annotated

import typer

from tokensmith.cli.common import fail
from tokensmith.conformance import ExchangeTarget, run_exchange_conformance
from tokensmith.conformance.peer import ACCESS_TOKEN_TYPE

conformance_app = typer.Typer(help="Check a server's conformance to an RFC, from outside.", no_args_is_help=True)


def _token(value: str | None) -> str | None:
    """``-`` reads the token from standard input, so it stays out of the shell history."""
    return sys.stdin.readline().strip() if value == "-" else value


@conformance_app.command("exchange")
def exchange_conformance(
    issuer: Annotated[str, typer.Option("--issuer", help="The server's issuer URL (metadata is discovered).")],
    client_id: Annotated[str, typer.Option("--client-id", help="A client registered for token exchange.")],
    client_secret: Annotated[
        str, typer.Option("--client-secret", envvar="TOKENSMITH_CLIENT_SECRET", help="Its secret (or set the env var).")
    ],
    subject_token: Annotated[
        str | None,
        typer.Option(
            "--subject-token",
            help="A token the client may exchange; '-' reads stdin. Default: one "
            "obtained by client credentials from the same client.",
        ),
    ] = None,
    subject_token_type: Annotated[str, typer.Option("--subject-token-type")] = ACCESS_TOKEN_TYPE,
    actor_token: Annotated[
        str | None, typer.Option("--actor-token", help="For the delegation checks. Default: client credentials.")
    ] = None,
    actor_token_type: Annotated[str, typer.Option("--actor-token-type")] = ACCESS_TOKEN_TYPE,
    audience: Annotated[
        list[str] | None, typer.Option("--audience", help="Sent with the exchanges meant to succeed; repeatable.")
    ] = None,
    scope: Annotated[
        str | None, typer.Option("--scope", help="Sent with the exchanges meant to succeed (space-separated).")
    ] = None,
    escalation_scope: Annotated[
        str | None,
        typer.Option("--escalation-scope", help="A scope the client may get but the subject token lacks."),
    ] = None,
    expired_token: Annotated[
        str | None, typer.Option("--expired-token", help="An expired token this server issued, to see it refused.")
    ] = None,
    auth_method: Annotated[
        str, typer.Option("--auth-method", help="client_secret_basic or client_secret_post.")
    ] = "client_secret_basic",
    timeout: Annotated[float, typer.Option("--timeout", help="Seconds per request.", min=0.1)] = 10.0,
    as_json: Annotated[bool, typer.Option("--json", help="Print the report as JSON.")] = False,
) -> None:
    """Check a server's RFC 8693 token exchange; exits 1 when any check fails. Tokens and secrets are never printed."""
    if auth_method not in ("client_secret_basic", "client_secret_post"):
        raise fail("--auth-method must be client_secret_basic or client_secret_post")
    target = ExchangeTarget(
        issuer=issuer.rstrip("/"),
        client_id=client_id,
        client_secret=client_secret,
        auth_method="client_secret_basic" if auth_method == "client_secret_basic" else "client_secret_post",
        subject_token=_token(subject_token),
        subject_token_type=subject_token_type,
        actor_token=_token(actor_token),
        actor_token_type=actor_token_type,
        audience=tuple(audience or ()),
        scope=scope,
        escalation_scope=escalation_scope,
        expired_token=_token(expired_token),
        timeout=timeout,
    )
    report = run_exchange_conformance(target)
    typer.echo(json.dumps(report.as_dict(), indent=2) if as_json else report.table())
    if report.failed:
        raise typer.Exit(1)
