"""``tokensmith purge``: delete expired rows now (what the server does every purge-interval)."""

from __future__ import annotations

import asyncio

import typer

from tokensmith.cli.common import ConfigOption, load_or_exit
from tokensmith.config.server import ServerConfig


def purge(config: ConfigOption = None) -> None:
    """Delete expired codes, tokens, sessions, login counts and audit events past audit-retention now (what the
    server does every purge-interval)."""
    settings = load_or_exit(config)
    asyncio.run(_purge(settings))


async def _purge(settings: ServerConfig) -> None:
    from tokensmith.server.clock import utc_now
    from tokensmith.store import opened_store

    async with opened_store(settings.database_url) as store:
        now = utc_now()
        deleted = await store.purge_expired(now, audit_events_before=settings.audit_events_expire_before(now))
    typer.echo(f"purged {deleted} expired row{'' if deleted == 1 else 's'}")
