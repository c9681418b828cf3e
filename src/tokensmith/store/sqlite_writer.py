"""The group commit's writer on a SQLite file: a stdlib ``sqlite3`` connection in a thread of its own.

Through aiosqlite a flush costs about five hops to its thread and back (the pool's reset-on-return rollback, BEGIN,
one ``executemany`` per table, COMMIT), each waking the event loop, and each a few dozen microseconds of CPU that
competes with the event loop for the GIL. Here a whole flush (BEGIN IMMEDIATE, the inserts, COMMIT, or ROLLBACK on
failure) is one function run in the writer's thread: one hop per flush. The inserts of each table are one multi-row
statement (up to 64 rows) rather than an ``executemany``, which steps SQLite once per row and takes the GIL back
from the event loop after every step (:func:`multi_row_sql`).

The connection has the engine's settings (busy timeout, ``synchronous``, foreign keys; WAL is the file's) and runs
in autocommit outside the explicit transaction, so it never holds a read snapshot between flushes. It is opened by
the first flush and closed by :meth:`SqliteWriter.close`. An in-memory database is private to its connection, so
the store only uses a writer for a database that is a file.

Cancellation: a flush already running in the thread cannot be stopped there (``sqlite3_interrupt`` does not end a
busy wait), so the cancelled caller marks it and the thread rolls it back instead of committing, as the
aiosqlite path rolls back. Whatever happens, the thread never leaves a transaction open: it commits, rolls back, or
closes the connection when even the rollback failed (the next flush opens a new one).
"""

from __future__ import annotations

import asyncio
import functools
import re
import sqlite3
from collections.abc import Callable, Sequence
from concurrent.futures import ThreadPoolExecutor
from itertools import chain
from typing import Any, Final

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


class FlushCancelled(Exception):
    """Raised in the writer's thread instead of committing a flush whose caller was cancelled (nobody sees it)."""


class _Flush:
    __slots__ = ("cancelled", "groups")

    def __init__(self, groups: Groups) -> None:
        self.groups = groups
        self.cancelled = False


class SqliteWriter:
    """Runs each flush as one transaction on one connection, in one thread, one flush at a time."""

    def __init__(self, connect: Callable[..., sqlite3.Connection]) -> None:
        """``connect(**options)`` opens the database file with these ``sqlite3.connect`` options added (called in
        the writer's thread); the writer applies the settings."""
        self._connect = connect
        self._connection: sqlite3.Connection | None = None
        # One thread: flushes (and the close) run in submission order, never two at once on the connection.
        self._executor = ThreadPoolExecutor(max_workers=1, thread_name_prefix="tokensmith-sqlite-writer")

    async def write(self, groups: Groups) -> None:
        """Insert every group's rows in one transaction; return once it is committed, or raise what SQLite raised
        (the transaction rolled back)."""
        flush = _Flush(groups)
        try:
            await asyncio.get_running_loop().run_in_executor(self._executor, self._run, flush)
        except asyncio.CancelledError:
            # Not started yet: run_in_executor has withdrawn it. Running: the thread rolls it back, unless it is
            # already committing (then the rows are written, as for a caller cancelled after the commit).
            flush.cancelled = True
            raise

    async def close(self) -> None:
        """Close the connection once the flushes submitted before have finished; the writer is unusable after."""
        try:
            await asyncio.get_running_loop().run_in_executor(self._executor, self._close)
        finally:
            self._executor.shutdown(wait=False)

    # --- in the writer's thread ---------------------------------------------------------------------------------

    def _run(self, flush: _Flush) -> None:
        connection = self._connection
        if connection is None:
            connection = self._connection = self._open()
        # IMMEDIATE: take the write lock now, waiting for it up to the busy timeout, rather than at the first insert.
        connection.execute("BEGIN IMMEDIATE")
        try:
            for statement, rows in flush.groups:
                _insert(connection, statement, rows)
            if flush.cancelled:
                raise FlushCancelled
            connection.execute("COMMIT")
        except BaseException:
            self._rollback(connection)
            raise

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

    def _rollback(self, connection: sqlite3.Connection) -> None:
        try:
            # SQLite rolls some failures back itself (a full disk, an I/O error): then there is nothing to end.
            if connection.in_transaction:
                connection.execute("ROLLBACK")
        except BaseException:
            # State unknown: closing the connection ends its transaction; the next flush opens a new one.
            self._connection = None
            connection.close()

    def _close(self) -> None:
        connection, self._connection = self._connection, None
        if connection is not None:
            connection.close()
