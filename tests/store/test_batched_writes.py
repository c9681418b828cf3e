"""The token endpoint's inserts (issued tokens, audit events) are group-committed through SQLAlchemy: concurrent
rows share one transaction, every read path gets back what was written, each caller gets its own outcome, and a
cancelled flush leaves no transaction open. On both databases."""

from __future__ import annotations

import asyncio
from dataclasses import asdict, replace
from datetime import UTC, datetime, timedelta, timezone
from typing import Any
from zoneinfo import ZoneInfo

import pytest
from sqlalchemy import event, insert, text
from sqlalchemy.exc import IntegrityError, StatementError
from tests.support.store_batches import batch_with_one_duplicate

from tokensmith.store.engine import transactional
from tokensmith.store.records import AuditEvent, IssuedTokenRecord
from tokensmith.store.sql import SqlStore
from tokensmith.store.tables import issued_tokens

NOW = datetime(2026, 11, 26, 12, 0, 0, tzinfo=UTC)
PLUS_TWO = timezone(timedelta(hours=2))

# Times as callers may hand them over: UTC with and without microseconds, other offsets, a named zone, old dates.
TIMES = [
    NOW,
    datetime(2026, 11, 26, 14, 30, 5, 250000, tzinfo=PLUS_TWO),
    datetime(2026, 3, 29, 1, 59, 59, 999999, tzinfo=ZoneInfo("Europe/Paris")),
    datetime(2026, 11, 1, 1, 30, 0, 1, tzinfo=ZoneInfo("America/New_York")),
    datetime(999, 1, 2, 3, 4, 5, 6, tzinfo=UTC),
]


def token(jti: str, issued_at: datetime = NOW, **changes: Any) -> IssuedTokenRecord:
    record = IssuedTokenRecord(
        jti=jti,
        kind="access_token",
        client_id="client-é",
        subject="alice",
        issued_at=issued_at,
        expires_at=utc(issued_at) + timedelta(minutes=5),
        grant_id="grant-1",
        parent_jti=None,
        actor_jti=None,
    )
    return replace(record, **changes)


def audit(number: int, occurred_at: datetime = NOW, **changes: Any) -> AuditEvent:
    event = AuditEvent(
        occurred_at=occurred_at,
        event="token_exchange",
        outcome="granted",
        client_id="client-1",
        subject="ålice",
        actor="svc" if number % 2 else None,
        audience=("message-service", "ünïcode") if number % 3 else (),
        scope=("message.read",),
        reason=None if number % 2 else 'refused: "quoted" \\ reason',
        details={"number": number, "ratio": 0.1, "big": 2**70, "flag": True, "none": None, "nested": {"a": ["é"]}},
    )
    return replace(event, **changes)


def utc(value: datetime) -> datetime:
    return value.astimezone(UTC)


def in_utc(record: Any) -> Any:
    """The record with its times in UTC, as the store returns them (and comparable with ==: an aware datetime in
    an ambiguous or skipped local hour never equals one in another zone)."""
    return replace(
        record, **{name: utc(value) for name, value in asdict(record).items() if isinstance(value, datetime)}
    )


async def test_concurrent_rows_of_both_tables_share_one_transaction(store: SqlStore) -> None:
    commits: list[None] = []
    event.listen(store.engine.sync_engine, "commit", lambda _connection: commits.append(None))
    await asyncio.gather(
        *(store.record_issued_token(token(f"t{i}")) for i in range(40)),
        *(store.add_audit_event(audit(i)) for i in range(40)),
    )
    # gather starts the 80 submissions before the flush the first one scheduled: that flush takes all of them.
    assert len(commits) == 1
    assert len(await store.list_audit_events(limit=100)) == 40
    assert all([await store.get_issued_token(f"t{i}") is not None for i in range(40)])


async def test_issued_tokens_round_trip_through_every_read_path(store: SqlStore) -> None:
    records = []
    for number, when in enumerate(TIMES):
        records.append(token(f"live-{number}", when))
        records.append(token(f"revoked-{number}", when, revoked_at=when + timedelta(seconds=30), parent_jti="x"))
    await asyncio.gather(*(store.record_issued_token(record) for record in records))
    records = [in_utc(record) for record in records]

    for record in records:
        stored = await store.get_issued_token(record.jti)
        assert stored == record
        assert stored is not None
        assert stored.issued_at.tzinfo == UTC
        assert stored.revoked_at is None or stored.revoked_at.tzinfo == UTC
        assert await store.is_token_revoked(record.jti) is (record.revoked_at is not None)

    # list_revoked_tokens compares the stored times with bound ones (text on SQLite): the formats must agree.
    revoked = await store.list_revoked_tokens(datetime(900, 1, 1, tzinfo=UTC), datetime(900, 1, 1, tzinfo=UTC))
    assert {(r.jti, r.revoked_at, r.expires_at) for r in revoked} == {
        (r.jti, r.revoked_at, r.expires_at) for r in records if r.revoked_at is not None
    }
    since = utc(TIMES[1]) + timedelta(seconds=30)
    recent = await store.list_revoked_tokens(since, datetime(900, 1, 1, tzinfo=UTC))
    assert {r.jti for r in recent} == {r.jti for r in records if r.revoked_at is not None and r.revoked_at >= since}
    # The purge compares expires_at the same way.
    assert await store.purge_expired(utc(TIMES[1]) + timedelta(minutes=5)) == sum(
        1 for r in records if r.expires_at <= utc(TIMES[1]) + timedelta(minutes=5)
    )


async def test_audit_events_round_trip(store: SqlStore) -> None:
    events = [audit(number, when) for number, when in enumerate(TIMES)]
    for one in events:  # one at a time: ids follow the order
        await store.add_audit_event(one)
    stored = list(reversed(await store.list_audit_events(limit=100)))
    assert [replace(one, id=None) for one in stored] == [in_utc(one) for one in events]
    assert all(one.occurred_at.tzinfo == UTC for one in stored)
    assert all(isinstance(one.id, int) for one in stored)


async def test_a_duplicate_jti_fails_only_its_own_caller_and_the_rest_of_the_batch_commits(
    store: SqlStore, store_url: str
) -> None:
    await store.record_issued_token(token("taken"))
    tokens = [token(f"t{i}") for i in range(10)]
    events = [audit(i, client_id=f"c{i}") for i in range(10)]
    results = await asyncio.gather(
        *(store.record_issued_token(t) for t in tokens[:5]),
        store.record_issued_token(token("taken", kind="id_token")),
        *(store.add_audit_event(e) for e in events),
        *(store.record_issued_token(t) for t in tokens[5:]),
        return_exceptions=True,
    )
    failures = [result for result in results if result is not None]
    assert len(failures) == 1
    assert results[5] is failures[0]
    assert isinstance(failures[0], IntegrityError)

    # Committed, as seen from another engine (no transaction left open on the pooled connection).
    other = SqlStore(store_url)
    try:
        for t in tokens:
            assert await other.get_issued_token(t.jti) == t
        taken = await other.get_issued_token("taken")
        assert taken is not None
        assert taken.kind == "access_token"  # the first one stays
        assert sorted(e.client_id or "" for e in await other.list_audit_events()) == sorted(f"c{i}" for i in range(10))
    finally:
        await other.close()
    # The store goes on writing after the failed batch.
    await asyncio.gather(store.record_issued_token(token("after-1")), store.record_issued_token(token("after-2")))
    assert await store.get_issued_token("after-2") == token("after-2")


async def test_a_naive_datetime_fails_its_caller_alone(store: SqlStore) -> None:
    results = await asyncio.gather(
        store.record_issued_token(token("ok-1")),
        store.record_issued_token(token("naive", issued_at=datetime(2026, 1, 1))),
        store.add_audit_event(audit(1, occurred_at=datetime(2026, 1, 1))),
        store.add_audit_event(audit(2)),
        store.record_issued_token(token("ok-2")),
        return_exceptions=True,
    )
    assert results[0] is None
    assert results[3] is None
    assert results[4] is None
    for failure in (results[1], results[2]):
        assert isinstance(failure, StatementError)
        assert "naive datetime" in str(failure.orig)
    assert await store.get_issued_token("ok-2") == token("ok-2")
    assert await store.get_issued_token("naive") is None
    assert [e.details["number"] for e in await store.list_audit_events()] == [2]


async def test_a_token_exchanged_from_a_revoked_actor_is_revoked_at_birth_in_a_batch(store: SqlStore) -> None:
    await store.record_issued_token(token("actor"))
    await store.record_issued_token(token("subject"))
    await store.revoke_token_lineage("actor", NOW)
    late = NOW + timedelta(seconds=3)
    await asyncio.gather(
        store.record_issued_token(token("via-actor", late, parent_jti="subject", actor_jti="actor")),
        store.record_issued_token(token("via-subject", late, parent_jti="subject")),
    )
    via_actor = await store.get_issued_token("via-actor")
    assert via_actor is not None
    assert via_actor.revoked_at == late
    assert await store.is_token_revoked("via-subject") is False


async def test_a_failed_batch_keeps_an_in_memory_database() -> None:
    # The single connection of ":memory:" is the database: a failed batch must roll back, not drop it.
    store = SqlStore("sqlite+aiosqlite:///:memory:")
    await store.initialize()
    try:
        await batch_with_one_duplicate(store, token("fresh"), token("taken"), audit(7))
        assert await store.get_issued_token("taken") == token("taken")
        assert await store.get_issued_token("fresh") == token("fresh")
        assert [e.details["number"] for e in await store.list_audit_events()] == [7]
    finally:
        await store.close()


@pytest.mark.parametrize("steps", [1, 2, 3, 4, 6, 10])
async def test_a_flush_cancelled_mid_write_leaves_no_transaction_open(
    store: SqlStore, store_url: str, steps: int
) -> None:
    await store.record_issued_token(token("before"))
    writing = asyncio.ensure_future(store.record_issued_token(token("cancelled")))
    for _ in range(steps):  # into the flush: checkout, BEGIN, executemany, COMMIT...
        await asyncio.sleep(0)
    flusher = store._appends._flusher
    if flusher is not None:
        flusher.cancel()
        await asyncio.gather(flusher, return_exceptions=True)
    await asyncio.gather(writing, return_exceptions=True)
    # Whatever became of that row, the store writes on in committed transactions that others see, and no
    # transaction was left open on a pooled connection (on SQLite it would hold the write lock: "locked").
    await asyncio.gather(store.record_issued_token(token("after-1")), store.add_audit_event(audit(1)))
    other = SqlStore(store_url)
    try:
        await other.record_issued_token(token("from-other"))
        assert await other.get_issued_token("after-1") == token("after-1")
        assert await other.get_issued_token("before") == token("before")
    finally:
        await other.close()
    await store.record_issued_token(token("after-2"))
    assert await store.get_issued_token("from-other") == token("from-other")


async def test_a_flush_cancelled_while_its_insert_waits_for_a_lock_is_rolled_back(
    store: SqlStore, store_url: str
) -> None:
    # Another connection holds what the insert needs (SQLite: the write lock; PostgreSQL: the same primary key,
    # uncommitted), so the flush is cancelled inside the driver's executemany.
    other = SqlStore(store_url)
    try:
        async with transactional(other.engine).connect() as blocker:
            await blocker.execute(insert(issued_tokens), asdict(token("contended")))
            writing = asyncio.ensure_future(
                asyncio.gather(store.record_issued_token(token("contended")), store.add_audit_event(audit(5)))
            )
            await asyncio.sleep(0.3)
            flusher = store._appends._flusher
            assert flusher is not None
            assert not writing.done()
            flusher.cancel()
            await asyncio.sleep(0.1)
            await blocker.rollback()
        await asyncio.wait_for(asyncio.gather(flusher, writing, return_exceptions=True), 20)
        assert writing.cancelled() or isinstance(writing.exception(), asyncio.CancelledError)
        # Nothing of the cancelled flush (the token and the event) was committed, and the store writes on.
        await asyncio.wait_for(store.record_issued_token(token("after")), 20)
        assert await other.get_issued_token("after") == token("after")
        assert await other.get_issued_token("contended") is None
        assert await other.list_audit_events() == []
        await other.record_issued_token(token("from-other"))
    finally:
        await other.close()


@pytest.mark.postgres
async def test_a_connection_the_database_dropped_costs_the_callers_nothing(postgres_database_url: str) -> None:
    # The pool pings a connection before lending it (engine.py): one the server has dropped is replaced.
    store = SqlStore(postgres_database_url)
    await store.initialize()
    try:
        await asyncio.gather(store.record_issued_token(token("warm")), store.add_audit_event(audit(1)))
        async with store.engine.connect(), store.engine.connect():
            pass  # two connections in the pool: one drops the other
        async with store.engine.connect() as connection:
            dropped = await connection.execute(
                text(
                    "SELECT pg_terminate_backend(pid) FROM pg_stat_activity "
                    "WHERE datname = current_database() AND pid <> pg_backend_pid()"
                )
            )
            assert dropped.all(), "no pooled connection to drop"
        await asyncio.gather(store.record_issued_token(token("after-drop")), store.add_audit_event(audit(2)))
        await asyncio.gather(store.record_issued_token(token("later")), store.add_audit_event(audit(3)))
        for jti in ("warm", "after-drop", "later"):
            assert await store.get_issued_token(jti) == token(jti)
        assert sorted(e.details["number"] for e in await store.list_audit_events()) == [1, 2, 3]
    finally:
        await store.close()
