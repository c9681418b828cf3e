"""The group commit's writer on a SQLite file: a stdlib ``sqlite3`` connection on the event loop, and one in a thread
for when the write lock is taken.

Through aiosqlite a flush costs about five hops to its thread and back (the pool's reset-on-return rollback, BEGIN,
one ``executemany`` per table, COMMIT), each waking the event loop, and each a few dozen microseconds of CPU that
competes with the event loop for the GIL. Here a whole flush (BEGIN IMMEDIATE, the inserts, COMMIT, or ROLLBACK on
failure) is one synchronous function. The inserts of each table are one multi-row statement (up to 64 rows) rather
than an ``executemany``, which steps SQLite once per row (:func:`multi_row_sql`).

Where it runs: even one hop per flush to a thread costs more CPU (context switches, GIL hand-overs) than the SQLite
work itself, which in WAL mode with ``synchronous=NORMAL`` neither syncs nor, when the lock is free, waits. So a
flush first runs inline, on the loop's connection: busy timeout 0, so that BEGIN IMMEDIATE fails at once when
another connection (another process) holds the write lock; then the whole flush goes to the writer's thread, whose
connection waits for the lock up to the engine's busy timeout, as every connection of the engine does. WAL
checkpoints, which sync both files, are off on the loop's connection and run in the thread (PASSIVE, every
:data:`CHECKPOINT_EVERY` inline commits). A file that is not in WAL mode (where every commit syncs) is written from
the thread only.

The WAL must also start over now and then, or it grows without end: SQLite rewrites it from the beginning only
when a write transaction begins while every frame in it has been copied to the database file. A checkpoint running
in the thread beside the inline commits never gets there under sustained load (the commits made while it runs are
left over), and the WAL grew by about 7 MB a second at 3 000 exchanges a second. So once a checkpoint is done, the
next flush goes to the thread, which first copies what was committed meanwhile (a few frames: a short wait for
the flushes queued behind it) and then writes the flush, whose transaction starts the WAL over.

The connections have the engine's settings (busy timeout, ``synchronous``, foreign keys; WAL is the file's) and run
in autocommit outside the explicit transaction, so they never hold a read snapshot between flushes. They are opened
by the first flush that needs them and closed by :meth:`SqliteWriter.close`. An in-memory database is private to
its connection, so the store only uses a writer for a database that is a file.

Cancellation: an inline flush has no ``await``: it cannot be cancelled half-way. A flush already running in the
thread cannot be stopped there (``sqlite3_interrupt`` does not end a busy wait), so the cancelled caller marks it
and the thread rolls it back instead of committing, as the aiosqlite path rolls back; later flushes follow it to the
thread until it is over. Whatever happens, no transaction is left open: each flush commits, rolls back, or closes
its connection when even the rollback failed (the next flush opens a new one).
"""

from __future__ import annotations

import asyncio
import functools
import re
import sqlite3
from collections.abc import Callable, Sequence
from concurrent.futures import Future, ThreadPoolExecutor
from itertools import chain
from typing import Any, Final, Literal

from tokensmith.store.engine import _sqlite_connection_settings

# (driver SQL, the parameters of each of its rows), in the order they are to be inserted.
Groups = Sequence[tuple[str, Sequence[tuple[Any, ...]]]]

# Rows per multi-row statement: a batch of up to this many rows of one table is one statement. The SQL of every
# size, for both tables, stays prepared in the connection's statement cache (and built once, in multi_row_sql's).
_MAX_ROWS_PER_STATEMENT: Final = 64
_CACHED_STATEMENTS: Final = 4 * _MAX_ROWS_PER_STATEMENT
_INSERT_VALUES = re.compile(r"(INSERT INTO \w+ \([\w, ]+\)) VALUES (\(\?(?:, \?)*\))")
_INSERT_SELECT = re.compile(r"(INSERT INTO \w+ \([\w, ]+\)) SELECT (.+)", re.DOTALL)
_INNERMOST_PARENTHESES = re.compile(r"\([^()]*\)")
_CLAUSE_KEYWORD = re.compile(r"\b(FROM|WHERE|GROUP|HAVING|WINDOW|ORDER|LIMIT|UNION|EXCEPT|INTERSECT)\b", re.IGNORECASE)


@functools.lru_cache(maxsize=_CACHED_STATEMENTS)
def multi_row_sql(statement: str, rows: int) -> str | None:
    """``statement`` (a one-row ``INSERT ... VALUES`` or ``INSERT ... SELECT <expressions>``, ``?`` parameters)
    rewritten to insert ``rows`` rows, each with the one-row statement's parameters in order; ``None`` for any
    other statement (it then runs as an ``executemany``).

    Why: ``executemany`` steps SQLite once per row and takes the GIL back after each step, which under load means
    a GIL hand-over with the event loop per row. One statement is one step. ``VALUES`` gets more rows; a ``SELECT``
    of expressions selects them from a ``VALUES`` table instead, its n-th ``?`` becoming ``v.column<n>``.

    The rows of one statement do not see each other (SQLite reads the whole ``SELECT`` before inserting when it
    reads the target table): the issued-token insert's revoked-parent probe sees rows committed before and rows of
    earlier statements. A token is only exchanged after its own row was committed, so its children are never in
    the statement that inserts it.
    """
    if "'" in statement or '"' in statement:  # a literal or quoted name could hold a "?": leave it alone
        return None
    if match := _INSERT_VALUES.fullmatch(statement):
        return f"{match[1]} VALUES {', '.join([match[2]] * rows)}"
    match = _INSERT_SELECT.fullmatch(statement)
    if match is None:
        return None
    expressions = match[2]
    top_level = expressions
    while (stripped := _INNERMOST_PARENTHESES.sub("", top_level)) != top_level:
        top_level = stripped
    if _CLAUSE_KEYWORD.search(top_level):  # the SELECT has a FROM (or more) of its own
        return None
    parts = expressions.split("?")
    columns = [f"v.column{number}" for number in range(1, len(parts))]
    selected = "".join(part + column for part, column in zip(parts, [*columns, ""], strict=True))
    row = "(" + ", ".join("?" * len(columns)) + ")"
    # Built from the store's own compiled statements only: no outside text reaches it.
    return f"{match[1]} SELECT {selected} FROM (VALUES {', '.join([row] * rows)}) AS v"  # noqa: S608


def _insert(connection: sqlite3.Connection, statement: str, rows: Sequence[tuple[Any, ...]]) -> None:
    """Run ``statement`` for each row, in order, in as few SQLite statements as possible."""
    start, end = 0, len(rows)
    while start < end:
        size = min(end - start, _MAX_ROWS_PER_STATEMENT)
        sql = multi_row_sql(statement, size) if size > 1 else statement
        if sql is None:
            connection.executemany(statement, rows[start:])
            return
        connection.execute(sql, tuple(chain.from_iterable(rows[start : start + size])))
        start += size


def _transaction(
    connection: sqlite3.Connection, groups: Groups, *, cancelled: Callable[[], bool] | None = None
) -> None:
    """One flush as one transaction: every group's rows, then COMMIT (FlushCancelled instead when ``cancelled()``
    says the caller gave up). On failure the transaction is left for the caller to roll back."""
    # IMMEDIATE: take the write lock now (or fail, or wait for it up to the busy timeout) rather than at the first
    # insert.
    connection.execute("BEGIN IMMEDIATE")
    for statement, rows in groups:
        _insert(connection, statement, rows)
    if cancelled is not None and cancelled():
        raise FlushCancelled
    connection.execute("COMMIT")


class FlushCancelled(Exception):
    """Raised in the writer's thread instead of committing a flush whose caller was cancelled (nobody sees it)."""


class _Busy(Exception):
    """The inline attempt found the write lock taken (and rolled back whatever it began): the thread takes over."""


# Inline commits between two checkpoints run in the thread. A flush dirties a handful of pages (the tables and
# their indexes), so this keeps the WAL near SQLite's default auto-checkpoint size of 1000 pages.
CHECKPOINT_EVERY: Final = 128


class _Flush:
    __slots__ = ("cancelled", "catch_up", "groups")

    def __init__(self, groups: Groups, *, catch_up: bool = False) -> None:
        self.groups = groups
        self.cancelled = False
        # Checkpoint first what the inline commits appended since the last checkpoint, so that this flush's
        # transaction starts the WAL over (see the module docstring).
        self.catch_up = catch_up


def _is_busy(error: sqlite3.Error) -> bool:
    # Extended codes (SQLITE_BUSY_RECOVERY, _SNAPSHOT, _TIMEOUT) keep SQLITE_BUSY in their low byte.
    code = getattr(error, "sqlite_errorcode", None)
    return code is not None and code & 0xFF == sqlite3.SQLITE_BUSY


class SqliteWriter:
    """Runs each flush as one transaction, one flush at a time: inline on the event loop when the write lock is
    free, else in the writer's thread, which waits for the lock."""

    def __init__(self, connect: Callable[..., sqlite3.Connection]) -> None:
        """``connect(**options)`` opens the database file with these ``sqlite3.connect`` options added (called on
        the event loop for the inline connection, in the writer's thread for the thread's); the writer applies the
        settings."""
        self._connect = connect
        # The event loop's connection: no busy wait (busy timeout 0), no checkpoint inside COMMIT. None until the
        # first flush; False once the file turned out not to be in WAL mode (then every flush goes to the thread).
        self._inline: sqlite3.Connection | Literal[False] | None = None
        self._inline_commits = 0
        # The thread's connection: the engine's busy timeout, SQLite's auto-checkpoint; also runs the checkpoints.
        self._connection: sqlite3.Connection | None = None
        # The thread's latest job: while a flush is queued or running there (waiting for the lock, or cancelled
        # but not yet rolled back), the next flushes follow it there, in order.
        self._last_flush: Future[None] | None = None
        self._checkpoint: Future[tuple[int, int, int] | None] | None = None
        # One thread: flushes, checkpoints and the close run in submission order, never two at once on its
        # connection.
        self._executor = ThreadPoolExecutor(max_workers=1, thread_name_prefix="tokensmith-sqlite-writer")

    async def write(self, groups: Groups) -> None:
        """Insert every group's rows in one transaction; return once it is committed, or raise what SQLite raised
        (the transaction rolled back)."""
        catch_up = self._checkpoint_done()
        if not catch_up and (self._last_flush is None or self._last_flush.done()):
            try:
                if self._write_inline(groups):
                    return
            except _Busy:
                pass
        flush = _Flush(groups, catch_up=catch_up)
        job = self._last_flush = self._executor.submit(self._run, flush)
        try:
            await asyncio.wrap_future(job)
        except asyncio.CancelledError:
            # Not started yet: the job is withdrawn (wrap_future cancels it). Running: the thread rolls it back,
            # unless it is already committing (then the rows are written, as for a caller cancelled after the
            # commit).
            flush.cancelled = True
            raise

    async def close(self) -> None:
        """Close the connections once the flushes submitted before have finished; the writer is unusable after."""
        try:
            await asyncio.get_running_loop().run_in_executor(self._executor, self._close)
        finally:
            self._executor.shutdown(wait=False)
            inline, self._inline = self._inline, None
            if isinstance(inline, sqlite3.Connection):
                inline.close()

    # --- on the event loop --------------------------------------------------------------------------------------

    def _write_inline(self, groups: Groups) -> bool:
        """Write the flush on the loop's connection: True once committed, False when this file is not in WAL mode
        (a commit would sync the file on the loop); raises :class:`_Busy` when the lock is taken.

        Nothing here waits: BEGIN IMMEDIATE fails at once on a taken lock (busy timeout 0); in WAL mode with
        ``synchronous=NORMAL`` a COMMIT appends to the WAL without syncing it; and the checkpoint, which syncs
        both files, is off on this connection (``wal_autocheckpoint=0``) and runs in the thread instead. This
        costs less CPU than the hop to the thread, whose GIL hand-overs with the loop are the dearest part of it.
        There is no ``await`` in between: the flush cannot be cancelled half-way.
        """
        connection = self._inline
        if connection is None:
            connection = self._inline = self._open_inline()
        if connection is False:
            return False
        try:
            _transaction(connection, groups)
        except BaseException as error:
            if not self._rolled_back(connection):
                self._inline = None
            # A taken lock (at BEGIN, or at COMMIT for a file that left WAL mode): rolled back, nothing written.
            if isinstance(error, sqlite3.Error) and _is_busy(error):
                raise _Busy from error
            raise
        self._inline_commits += 1
        if self._inline_commits >= CHECKPOINT_EVERY and (self._checkpoint is None or self._checkpoint.done()):
            self._inline_commits = 0
            self._checkpoint = self._executor.submit(self._run_checkpoint)
        return True

    def _checkpoint_done(self) -> bool:
        """True once, when the latest checkpoint of the inline commits has finished in the thread."""
        checkpoint = self._checkpoint
        if checkpoint is None or not checkpoint.done():
            return False
        self._checkpoint = None
        return True

    def _open_inline(self) -> sqlite3.Connection | Literal[False]:
        connection = self._open()
        try:
            journal_mode = connection.execute("PRAGMA journal_mode").fetchone()[0]
            if str(journal_mode).lower() != "wal":
                connection.close()
                return False
            connection.execute("PRAGMA busy_timeout = 0")
            connection.execute("PRAGMA wal_autocheckpoint = 0")
        except BaseException:
            connection.close()
            raise
        return connection

    # --- in the writer's thread ---------------------------------------------------------------------------------

    def _run(self, flush: _Flush) -> None:
        connection = self._connection
        if connection is None:
            connection = self._connection = self._open()
        if flush.catch_up:
            self._run_checkpoint()  # a failure leaves the WAL as it was: the flush is written all the same
        try:
            _transaction(connection, flush.groups, cancelled=lambda: flush.cancelled)
        except BaseException:
            if not self._rolled_back(connection):
                self._connection = None
            raise

    def _run_checkpoint(self) -> tuple[int, int, int] | None:
        """A PASSIVE checkpoint of what the inline commits appended to the WAL: it copies what no reader still
        needs and waits for nobody. Returns SQLite's (busy, WAL frames, frames checkpointed), None if it failed
        (the next one, or another connection's auto-checkpoint, does the work)."""
        try:
            connection = self._connection
            if connection is None:
                connection = self._connection = self._open()
            busy, frames, checkpointed = connection.execute("PRAGMA wal_checkpoint(PASSIVE)").fetchone()
        except sqlite3.Error:
            return None
        return int(busy), int(frames), int(checkpointed)

    def _open(self) -> sqlite3.Connection:
        connection = self._connect(cached_statements=_CACHED_STATEMENTS)
        try:
            # Autocommit (no implicit BEGIN from the module): this writer opens and ends every transaction itself.
            connection.isolation_level = None
            _sqlite_connection_settings(connection, None)
            # A multi-row insert that reads its own table (the revoked-parent probe) is materialized first, in a
            # temporary table: a few rows, kept in memory rather than in a file created and deleted per flush.
            connection.execute("PRAGMA temp_store = MEMORY")
        except BaseException:
            connection.close()
            raise
        return connection

    @staticmethod
    def _rolled_back(connection: sqlite3.Connection) -> bool:
        """End the connection's transaction, if any; False when the connection had to be closed for that."""
        try:
            # SQLite rolls some failures back itself (a full disk, an I/O error): then there is nothing to end.
            if connection.in_transaction:
                connection.execute("ROLLBACK")
        except BaseException:
            # State unknown: closing the connection ends its transaction; the next flush opens a new one.
            connection.close()
            return False
        return True

    def _close(self) -> None:
        connection, self._connection = self._connection, None
        if connection is not None:
            connection.close()
