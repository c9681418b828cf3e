"""On a SQLite file the group commit's flushes run in a writer thread of their own (store/sqlite_writer.py): one
transaction per flush, on a connection configured like the engine's, without the engine's pool."""

from __future__ import annotations

import asyncio
from pathlib import Path
from typing import Any

from sqlalchemy import event
from sqlalchemy.exc import IntegrityError
from tests.support.records import issued_token

from tokensmith.store.engine import SQLITE_BUSY_TIMEOUT_SECONDS
from tokensmith.store.records import AuditEvent
from tokensmith.store.sql import SqlStore
from tokensmith.store.sqlite_writer import multi_row_sql
from tokensmith.store.tables import issued_tokens


def audit(number: int) -> AuditEvent:
    return AuditEvent(
        occurred_at=issued_token("x").issued_at,
        event="token_exchange",
        outcome="granted",
        client_id="client-1",
        subject="alice",
        actor=None,
        audience=(),
        scope=(),
        reason=None,
        details={"number": number},
    )


async def test_flushes_bypass_the_pool_and_commit_for_every_connection(tmp_path: Path) -> None:
    store = SqlStore(f"sqlite+aiosqlite:///{tmp_path}/writer.db")
    await store.initialize()
    checkouts: list[Any] = []
    event.listen(store.engine.sync_engine.pool, "checkout", lambda *args: checkouts.append(args))
    try:
        await asyncio.gather(
            *(store.record_issued_token(issued_token(f"t-{i}")) for i in range(8)),
            *(store.add_audit_event(audit(i)) for i in range(3)),
        )
        assert checkouts == []  # no pooled connection: the writer's own
        assert await store.get_issued_token("t-7") == issued_token("t-7")
        assert sorted(e.details["number"] for e in await store.list_audit_events()) == [0, 1, 2]
    finally:
        await store.close()


async def test_the_writer_connection_has_the_engine_settings(tmp_path: Path) -> None:
    store = SqlStore(f"sqlite+aiosqlite:///{tmp_path}/settings.db")
    await store.initialize()
    try:
        await store.record_issued_token(issued_token("first"))
        writer = store._sqlite_writer
        assert writer is not None
        connection = writer._connection
        assert connection is not None
        pragmas = {
            name: connection.execute(f"PRAGMA {name}").fetchone()[0]
            for name in ("busy_timeout", "synchronous", "foreign_keys", "journal_mode")
        }
        assert pragmas == {
            "busy_timeout": SQLITE_BUSY_TIMEOUT_SECONDS * 1000,
            "synchronous": 1,  # NORMAL
            "foreign_keys": 1,
            "journal_mode": "wal",
        }
        assert not connection.in_transaction  # no read snapshot held between flushes
    finally:
        await store.close()
    assert store._sqlite_writer is None


async def test_a_failed_flush_rolls_back_and_each_caller_gets_its_own_outcome(tmp_path: Path) -> None:
    store = SqlStore(f"sqlite+aiosqlite:///{tmp_path}/failed.db")
    await store.initialize()
    try:
        await store.record_issued_token(issued_token("taken"))
        results = await asyncio.gather(
            store.record_issued_token(issued_token("fresh")),
            store.record_issued_token(issued_token("taken")),
            store.add_audit_event(audit(1)),
            return_exceptions=True,
        )
        assert results[0] is None
        assert isinstance(results[1], IntegrityError)
        assert results[2] is None
        writer = store._sqlite_writer
        assert writer is not None
        assert writer._connection is not None
        assert not writer._connection.in_transaction
        # Each row committed once: the failed batch left nothing behind for the rows written again alone.
        async with store.engine.connect() as connection:
            count = (await connection.exec_driver_sql(f"SELECT count(*) FROM {issued_tokens.name}")).scalar()
        assert count == 2
    finally:
        await store.close()


async def test_an_in_memory_database_keeps_the_engine_path() -> None:
    # Another connection to an in-memory database is another database: the flushes stay on the engine's.
    store = SqlStore("sqlite+aiosqlite:///:memory:")
    await store.initialize()
    try:
        assert store._sqlite_writer is None
        await asyncio.gather(*(store.record_issued_token(issued_token(f"m-{i}")) for i in range(4)))
        assert await store.get_issued_token("m-3") == issued_token("m-3")
    finally:
        await store.close()


async def test_a_large_batch_goes_in_multi_row_statements_in_order(tmp_path: Path) -> None:
    # 70 rows of each table: statements of 64 and 6 rows; audit ids follow the order the events were added in.
    store = SqlStore(f"sqlite+aiosqlite:///{tmp_path}/large.db")
    await store.initialize()
    try:
        tokens = [issued_token(f"big-{i}", parent="big-0" if i % 3 else None) for i in range(70)]
        _, outcomes = await asyncio.gather(
            asyncio.gather(*(store.record_issued_token(token) for token in tokens)),
            store.add_audit_events([audit(i) for i in range(70)]),
        )
        assert outcomes == [None] * 70
        for token in tokens:
            assert await store.get_issued_token(token.jti) == token
        stored = await store.list_audit_events(limit=200)
        assert [event.details["number"] for event in reversed(stored)] == list(range(70))
        assert [event.id for event in reversed(stored)] == sorted(event.id for event in stored)
    finally:
        await store.close()


def test_only_plain_one_row_inserts_are_rewritten() -> None:
    assert (
        multi_row_sql("INSERT INTO t (a, b) VALUES (?, ?)", 3) == "INSERT INTO t (a, b) VALUES (?, ?), (?, ?), (?, ?)"
    )
    assert (
        multi_row_sql("INSERT INTO t (a, b) SELECT ?, coalesce(?, (SELECT x FROM u WHERE u.y = ?))", 2)
        == "INSERT INTO t (a, b) SELECT v.column1, coalesce(v.column2, (SELECT x FROM u WHERE u.y = v.column3)) "
        "FROM (VALUES (?, ?, ?), (?, ?, ?)) AS v"
    )
    for statement in (
        "INSERT INTO t (a) SELECT x FROM u WHERE u.y = ?",  # a FROM of its own: VALUES cannot be added
        "INSERT INTO t (a, b) SELECT ?, '?'",  # a literal
        'INSERT INTO "t" (a) VALUES (?)',  # a quoted name
        "UPDATE t SET a = ?",
        "INSERT INTO t (a) VALUES (?) RETURNING a",
    ):
        assert multi_row_sql(statement, 2) is None, statement


async def test_the_multi_row_token_insert_probes_parents_by_primary_key(tmp_path: Path) -> None:
    store = SqlStore(f"sqlite+aiosqlite:///{tmp_path}/plan.db")
    await store.initialize()
    try:
        append = store._issued_token_append
        sql = multi_row_sql(append.sql, 4)
        assert sql is not None
        parameters = [value for i in range(4) for value in append.encode(issued_token(f"c-{i}", parent="p"))]
        async with store.engine.connect() as connection:
            plan = (await connection.exec_driver_sql("EXPLAIN QUERY PLAN " + sql, tuple(parameters))).all()
        steps = [str(row[3]) for row in plan]
        assert not [step for step in steps if step.startswith("SCAN") and "issued_tokens" in step], steps
        assert any("lineage_parent USING INDEX sqlite_autoindex_issued_tokens_1" in step for step in steps), steps
    finally:
        await store.close()
