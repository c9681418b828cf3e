"""On a SQLite file the group commit's flushes run in a writer thread of their own (store/sqlite_writer.py): one
transaction per flush, on a connection configured like the engine's, without the engine's pool."""

from __future__ import annotations

import asyncio
import contextlib
import sqlite3
import threading
from collections.abc import Iterator
from pathlib import Path
from typing import Any

from sqlalchemy import event
from tests.support.records import audit_event, issued_token
from tests.support.store_batches import batch_with_one_duplicate, opened_store

from tokensmith.store import sqlite_writer
from tokensmith.store.engine import SQLITE_BUSY_TIMEOUT_SECONDS, SQLITE_WAL_SIZE_LIMIT_BYTES
from tokensmith.store.sqlite_writer import SqliteWriter, multi_row_sql
from tokensmith.store.tables import issued_tokens


async def test_flushes_bypass_the_pool_and_commit_for_every_connection(tmp_path: Path) -> None:
    async with opened_store(f"sqlite+aiosqlite:///{tmp_path}/writer.db") as store:
        checkouts: list[Any] = []
        event.listen(store.engine.sync_engine.pool, "checkout", lambda *args: checkouts.append(args))
        await asyncio.gather(
            *(store.record_issued_token(issued_token(f"t-{i}")) for i in range(8)),
            *(store.add_audit_event(audit_event(i)) for i in range(3)),
        )
        assert checkouts == []  # no pooled connection: the writer's own
        assert await store.get_issued_token("t-7") == issued_token("t-7")
        assert sorted(e.details["number"] for e in await store.list_audit_events()) == [0, 1, 2]


def _pragmas(connection: sqlite3.Connection) -> dict[str, Any]:
    names = ("busy_timeout", "synchronous", "foreign_keys", "journal_mode", "wal_autocheckpoint", "journal_size_limit")
    return {name: connection.execute(f"PRAGMA {name}").fetchone()[0] for name in names}


@contextlib.contextmanager
def write_lock_held(path: Path) -> Iterator[sqlite3.Connection]:
    """Another connection (as another process would) holding the file's write lock."""
    blocker = sqlite3.connect(path, isolation_level=None)
    try:
        blocker.execute("BEGIN IMMEDIATE")
        yield blocker
    finally:
        if blocker.in_transaction:
            blocker.execute("ROLLBACK")
        blocker.close()


async def test_the_writer_connections_have_the_engine_settings(tmp_path: Path) -> None:
    async with opened_store(f"sqlite+aiosqlite:///{tmp_path}/settings.db") as store:
        await store.record_issued_token(issued_token("first"))
        writer = store._sqlite_writer
        assert writer is not None
        assert writer._connection is None  # the lock was free: written inline, the thread never needed
        inline = writer._inline
        assert isinstance(inline, sqlite3.Connection)
        # The loop's connection neither waits for the lock nor checkpoints (both could block the loop).
        assert _pragmas(inline) == {
            "busy_timeout": 0,
            "synchronous": 1,  # NORMAL
            "foreign_keys": 1,
            "journal_mode": "wal",
            "wal_autocheckpoint": 0,
            "journal_size_limit": SQLITE_WAL_SIZE_LIMIT_BYTES,
        }
        assert not inline.in_transaction  # no read snapshot held between flushes
        with write_lock_held(tmp_path / "settings.db") as blocker:
            writing = asyncio.ensure_future(store.record_issued_token(issued_token("second")))
            await asyncio.sleep(0.2)
            blocker.execute("COMMIT")
            await writing
        thread_connection = writer._connection
        assert thread_connection is not None
        assert _pragmas(thread_connection) == {
            "busy_timeout": SQLITE_BUSY_TIMEOUT_SECONDS * 1000,
            "synchronous": 1,
            "foreign_keys": 1,
            "journal_mode": "wal",
            "wal_autocheckpoint": 1000,  # SQLite's default: checkpoints happen in the thread
            "journal_size_limit": SQLITE_WAL_SIZE_LIMIT_BYTES,
        }
        assert not thread_connection.in_transaction
    assert store._sqlite_writer is None


async def test_a_taken_write_lock_sends_the_flush_to_the_thread_without_blocking_the_loop(tmp_path: Path) -> None:
    async with opened_store(f"sqlite+aiosqlite:///{tmp_path}/busy.db") as store:
        await store.record_issued_token(issued_token("inline"))
        writer = store._sqlite_writer
        assert writer is not None
        with write_lock_held(tmp_path / "busy.db") as blocker:
            writing = asyncio.ensure_future(
                asyncio.gather(store.record_issued_token(issued_token("waited")), store.add_audit_event(audit_event(1)))
            )
            # The loop runs on while the flush waits for the lock in the thread.
            ticks = 0
            for _ in range(20):
                await asyncio.sleep(0.01)
                ticks += 1
            assert ticks == 20
            assert not writing.done()
            assert writer._last_flush is not None
            assert not writer._last_flush.done()
            blocker.execute("COMMIT")
            await asyncio.wait_for(writing, 10)
        assert writer._connection is not None  # the thread's connection wrote it
        assert await store.get_issued_token("waited") == issued_token("waited")
        # The lock free again, the next flush is inline: the thread's last job stays the one above.
        last = writer._last_flush
        await store.record_issued_token(issued_token("inline-again"))
        assert writer._last_flush is last
        assert await store.get_issued_token("inline-again") == issued_token("inline-again")


async def test_inline_commits_are_checkpointed_in_the_thread(tmp_path: Path, monkeypatch: Any) -> None:
    monkeypatch.setattr(sqlite_writer, "CHECKPOINT_EVERY", 5)
    checkpoints: list[tuple[int, int, int] | None] = []
    checkpoint_threads: list[str] = []
    run_checkpoint = SqliteWriter._run_checkpoint

    def recorded(self: SqliteWriter) -> tuple[int, int, int] | None:
        checkpoint_threads.append(threading.current_thread().name)
        result = run_checkpoint(self)
        checkpoints.append(result)
        return result

    monkeypatch.setattr(SqliteWriter, "_run_checkpoint", recorded)
    async with opened_store(f"sqlite+aiosqlite:///{tmp_path}/checkpoint.db") as store:
        for number in range(4):
            await store.record_issued_token(issued_token(f"c-{number}"))
        writer = store._sqlite_writer
        assert writer is not None
        assert writer._checkpoint is None  # four inline commits: no checkpoint yet
        await store.record_issued_token(issued_token("c-4"))
        assert writer._checkpoint is not None
        await asyncio.wrap_future(writer._checkpoint)
        assert len(checkpoint_threads) == 1
        assert checkpoint_threads[0].startswith("tokensmith-sqlite-writer")
        assert len(checkpoints) == 1
        result = checkpoints[0]
        assert result is not None
        busy, frames, checkpointed = result
        # Every frame the inline commits appended is copied into the database file, off the loop.
        assert (busy, checkpointed) == (0, frames)
        assert frames > 0


async def test_the_wal_starts_over_although_every_checkpoint_has_commits_beside_it(
    tmp_path: Path, monkeypatch: Any
) -> None:
    # Sustained load, made deterministic. A checkpoint copies the frames there were when it began; under load
    # inline commits land beside it, and SQLite starts the WAL over only in a transaction that begins once
    # everything is copied. Here a reader holding a snapshot limits each checkpoint the way its start does, while
    # the commits after the snapshot go on. Without the writer's catch-up the file grew by a cycle's frames every
    # cycle, for good.
    monkeypatch.setattr(sqlite_writer, "CHECKPOINT_EVERY", 5)
    checkpointed = threading.Event()
    run_checkpoint = SqliteWriter._run_checkpoint

    def signalled(self: SqliteWriter) -> tuple[int, int, int] | None:
        try:
            return run_checkpoint(self)
        finally:
            checkpointed.set()

    monkeypatch.setattr(SqliteWriter, "_run_checkpoint", signalled)
    path = tmp_path / "sustained.db"
    wal_sizes: list[int] = []
    async with opened_store(f"sqlite+aiosqlite:///{path}") as store:
        tokens = (issued_token(f"s-{number}") for number in range(10_000))
        for _ in range(15):
            await store.record_issued_token(next(tokens))  # after a finished checkpoint: the thread catches up
            checkpointed.clear()
            snapshot = sqlite3.connect(path, isolation_level=None)
            try:
                snapshot.execute("BEGIN")
                snapshot.execute("SELECT count(*) FROM issued_tokens").fetchone()
                for _ in range(20):  # inline commits until one of them has started a checkpoint and it is done
                    await store.record_issued_token(next(tokens))
                    if await asyncio.to_thread(checkpointed.wait, 0.01):
                        break
                assert checkpointed.is_set()
            finally:
                snapshot.close()
            wal_sizes.append((tmp_path / "sustained.db-wal").stat().st_size)
        assert await store.get_issued_token("s-0") == issued_token("s-0")
    # Each cycle's frames overwrite the last cycle's: the file stays at about one cycle's size.
    assert wal_sizes[-1] <= 2 * wal_sizes[2], wal_sizes


async def test_a_failed_flush_rolls_back_and_each_caller_gets_its_own_outcome(tmp_path: Path) -> None:
    async with opened_store(f"sqlite+aiosqlite:///{tmp_path}/failed.db") as store:
        await batch_with_one_duplicate(store, issued_token("fresh"), issued_token("taken"), audit_event(1))
        writer = store._sqlite_writer
        assert writer is not None
        inline = writer._inline
        assert isinstance(inline, sqlite3.Connection)
        assert not inline.in_transaction
        # Each row committed once: the failed batch left nothing behind for the rows written again alone.
        async with store.engine.connect() as connection:
            count = (await connection.exec_driver_sql(f"SELECT count(*) FROM {issued_tokens.name}")).scalar()
        assert count == 2


async def test_an_in_memory_database_keeps_the_engine_path() -> None:
    # Another connection to an in-memory database is another database: the flushes stay on the engine's.
    async with opened_store("sqlite+aiosqlite:///:memory:") as store:
        assert store._sqlite_writer is None
        await asyncio.gather(*(store.record_issued_token(issued_token(f"m-{i}")) for i in range(4)))
        assert await store.get_issued_token("m-3") == issued_token("m-3")


async def test_a_large_batch_goes_in_multi_row_statements_in_order(tmp_path: Path) -> None:
    # 70 rows of each table: statements of 64 and 6 rows; audit ids follow the order the events were added in.
    async with opened_store(f"sqlite+aiosqlite:///{tmp_path}/large.db") as store:
        tokens = [issued_token(f"big-{i}", parent="big-0" if i % 3 else None) for i in range(70)]
        _, outcomes = await asyncio.gather(
            asyncio.gather(*(store.record_issued_token(token) for token in tokens)),
            store.add_audit_events([audit_event(i) for i in range(70)]),
        )
        assert outcomes == [None] * 70
        for token in tokens:
            assert await store.get_issued_token(token.jti) == token
        stored = await store.list_audit_events(limit=200)
        assert [event.details["number"] for event in reversed(stored)] == list(range(70))
        assert [event.id for event in reversed(stored)] == sorted(event.id for event in stored)


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
    async with opened_store(f"sqlite+aiosqlite:///{tmp_path}/plan.db") as store:
        append = store._issued_token_append
        sql = multi_row_sql(append.sql, 4)
        assert sql is not None
        parameters = [value for i in range(4) for value in append.encode(issued_token(f"c-{i}", parent="p"))]
        async with store.engine.connect() as connection:
            plan = (await connection.exec_driver_sql("EXPLAIN QUERY PLAN " + sql, tuple(parameters))).all()
        steps = [str(row[3]) for row in plan]
        assert not [step for step in steps if step.startswith("SCAN") and "issued_tokens" in step], steps
        assert any("lineage_parent USING INDEX sqlite_autoindex_issued_tokens_1" in step for step in steps), steps
