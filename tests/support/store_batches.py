"""Store test helpers: a store opened for one test, a database holding one expired and one live token (the purge
tests), and a group-commit batch in which one row fails."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from datetime import UTC, datetime, timedelta

from sqlalchemy.exc import IntegrityError
from tests.support.records import audit_event, issued_token

from tokensmith import store as store_package
from tokensmith.store.records import AuditEvent, IssuedTokenRecord
from tokensmith.store.sql import SqlStore


@asynccontextmanager
async def opened_store(database_url: str) -> AsyncIterator[SqlStore]:
    """A store on ``database_url``, initialized (migrated), closed when the block ends; as the SQL store, whose
    internals the store tests look at."""
    async with store_package.opened_store(database_url) as store:
        assert isinstance(store, SqlStore)
        yield store


async def seed_expired_and_live_tokens(database_url: str) -> None:
    """Record the tokens "expired" (a minute ago) and "live" (for ten years) in the database, and the audit events
    "old" (a year ago, past the default retention of 90 days) and "recent" (now)."""
    async with opened_store(database_url) as store:
        await store.record_issued_token(issued_token("expired", expires_in=-60))
        await store.record_issued_token(issued_token("live", expires_in=3650 * 24 * 3600))
        now = datetime.now(UTC)
        await store.add_audit_event(audit_event(occurred_at=now - timedelta(days=365), reason="old"))
        await store.add_audit_event(audit_event(occurred_at=now, reason="recent"))


async def audit_reasons(database_url: str) -> list[str | None]:
    """The reasons of the audit events in the database, oldest first."""
    async with opened_store(database_url) as store:
        return [event.reason for event in reversed(await store.list_audit_events())]


async def batch_with_one_duplicate(
    store: SqlStore, fresh: IssuedTokenRecord, taken: IssuedTokenRecord, event: AuditEvent
) -> None:
    """Record ``taken``, then ``fresh``, ``taken`` again and ``event`` concurrently (one batch): only the duplicate
    fails, with its own IntegrityError; the other two callers succeed."""
    await store.record_issued_token(taken)
    results = await asyncio.gather(
        store.record_issued_token(fresh),
        store.record_issued_token(taken),
        store.add_audit_event(event),
        return_exceptions=True,
    )
    assert results[0] is None
    assert isinstance(results[1], IntegrityError)
    assert results[2] is None
