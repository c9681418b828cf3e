"""The revocation cache's queries on SQLite and PostgreSQL: ``list_revoked_tokens`` and ``revocations_committed``,
and the group-committed inserts of the token endpoint's hot path."""

from __future__ import annotations

import asyncio
from datetime import timedelta
from pathlib import Path

import pytest
from sqlalchemy.exc import IntegrityError
from tests.support.records import NOW, driver_sql, issued_token

from tokensmith.store import sql as store_sql
from tokensmith.store.records import AuditEvent
from tokensmith.store.sql import SqlStore


async def test_list_revoked_tokens_returns_revocations_since_a_time_that_have_not_expired(store: SqlStore) -> None:
    for record in (
        issued_token("early"),
        issued_token("late"),
        issued_token("child", parent="late"),
        issued_token("short", expires_in=5),
    ):
        await store.record_issued_token(record)
    await store.record_issued_token(issued_token("live"))
    await store.revoke_token_lineage("early", NOW)
    await store.revoke_token_lineage("short", NOW)
    await store.revoke_token_lineage("late", NOW + timedelta(seconds=30))

    everything = await store.list_revoked_tokens(NOW - timedelta(days=1), NOW)
    assert sorted(r.jti for r in everything) == ["child", "early", "late", "short"]
    late = next(r for r in everything if r.jti == "late")
    assert (late.revoked_at, late.expires_at) == (NOW + timedelta(seconds=30), NOW + timedelta(seconds=300))

    recent = await store.list_revoked_tokens(NOW + timedelta(seconds=10), NOW)
    assert sorted(r.jti for r in recent) == ["child", "late"]
    # An expired token needs no revocation entry: its expiry refuses it.
    unexpired = await store.list_revoked_tokens(NOW - timedelta(days=1), NOW + timedelta(seconds=10))
    assert sorted(r.jti for r in unexpired) == ["child", "early", "late"]


async def test_revocations_committed_counts_each_revocation(store: SqlStore) -> None:
    await store.record_issued_token(issued_token("t1"))
    assert store.revocations_committed == 0
    await store.revoke_token_lineage("t1", NOW)
    await store.revoke_grant("no-such-grant", NOW)
    assert store.revocations_committed == 2


async def test_concurrent_inserts_are_all_committed_and_a_duplicate_fails_alone(store: SqlStore) -> None:
    await store.record_issued_token(issued_token("taken"))
    records = [issued_token(f"t{i}") for i in range(25)] + [issued_token("taken")]
    results = await asyncio.gather(*(store.record_issued_token(r) for r in records), return_exceptions=True)
    assert results[:25] == [None] * 25
    assert isinstance(results[25], IntegrityError)
    for i in range(25):
        assert await store.get_issued_token(f"t{i}") is not None


async def test_concurrent_audit_events_are_all_committed(store: SqlStore) -> None:
    events = [
        AuditEvent(occurred_at=NOW, event="token_exchange", outcome="granted", client_id=f"c{i}") for i in range(30)
    ]
    await asyncio.gather(*(store.add_audit_event(e) for e in events))
    stored = await store.list_audit_events(limit=100)
    assert sorted(e.client_id or "" for e in stored) == sorted(f"c{i}" for i in range(30))


@pytest.mark.parametrize("count", [1, 3])
async def test_close_writes_rows_still_queued(store_url: str, count: int) -> None:
    first = SqlStore(store_url)
    await first.initialize()
    pending = [asyncio.ensure_future(first.record_issued_token(issued_token(f"q{i}"))) for i in range(count)]
    await asyncio.sleep(0)
    await first.close()
    await asyncio.gather(*pending)
    second = SqlStore(store_url)
    await second.initialize()
    try:
        for i in range(count):
            assert await second.get_issued_token(f"q{i}") is not None
    finally:
        await second.close()


async def test_a_token_exchanged_from_a_revoked_token_is_revoked_at_birth(store: SqlStore) -> None:
    # Another replica's token exchange may learn of a revocation a moment late (revocation-refresh-interval):
    # what it issues from the revoked token in that moment joins the revoked lineage as it is recorded.
    await store.record_issued_token(issued_token("parent"))
    await store.record_issued_token(issued_token("bystander"))
    await store.revoke_token_lineage("parent", NOW)
    await asyncio.gather(
        store.record_issued_token(issued_token("late-child", parent="parent")),
        store.record_issued_token(issued_token("sibling", parent="bystander")),
    )
    await store.record_issued_token(issued_token("late-grandchild", parent="late-child"))
    assert await store.is_token_revoked("late-child")
    assert await store.is_token_revoked("late-grandchild")
    assert not await store.is_token_revoked("sibling")
    late = await store.get_issued_token("late-child")
    assert late is not None
    assert late.revoked_at == late.issued_at


async def test_recording_a_token_probes_its_parents_by_primary_key(tmp_path: Path) -> None:
    # Without statistics SQLite prefers any index on `revoked_at` to a primary-key lookup; a full index on it
    # once turned each recorded batch into a scan of every live token, slower as the table grew. The index is
    # partial (revoked tokens only) and the insert looks the parent and actor tokens up by jti.
    store = SqlStore(f"sqlite+aiosqlite:///{tmp_path}/plan.db")
    await store.initialize()
    try:
        await store.record_issued_token(issued_token("parent"))
        await store.revoke_token_lineage("parent", NOW)
        await asyncio.gather(
            *(store.record_issued_token(issued_token(f"child-{i}", parent="parent")) for i in range(32))
        )
        # The statement the group commit runs, with one row's parameters.
        child = issued_token("child-32", parent="parent")
        statement, parameters = driver_sql(store_sql._insert_issued_tokens, store, child)
        async with store.engine.connect() as connection:
            plan = (await connection.exec_driver_sql("EXPLAIN QUERY PLAN " + statement, parameters)).all()
        steps = [str(row[3]) for row in plan]
        assert not [step for step in steps if step.startswith("SCAN") and step != "SCAN CONSTANT ROW"], steps
        assert any("lineage_parent USING INDEX sqlite_autoindex_issued_tokens_1" in step for step in steps), steps
    finally:
        await store.close()
