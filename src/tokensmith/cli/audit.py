"""``tokensmith audit``: the token-exchange audit trail in the database, newest first."""

from __future__ import annotations

import asyncio
import json
from collections.abc import Sequence
from typing import Annotated, Any

import typer

from tokensmith.cli.common import ConfigOption, fail, load_or_exit
from tokensmith.store.records import AuditEvent


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
    config: ConfigOption = None,
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
        database_url = load_or_exit(config).database_url
    try:
        events = asyncio.run(_read_events(database_url, limit))
    except (OSError, ValueError) as exc:
        raise fail(f"cannot read the audit events: {exc}") from None
    for event in events:
        if outcome is not None and event.outcome != outcome:
            continue
        typer.echo(json.dumps(_event_dict(event)) if as_json else _event_line(event))
