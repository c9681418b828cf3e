"""Store test helpers: a store opened for one test, and a group-commit batch in which one row fails (the store
tests of both SQLite paths, the engine's for an in-memory database and the file writer's, start from it)."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager

from sqlalchemy.exc import IntegrityError

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
