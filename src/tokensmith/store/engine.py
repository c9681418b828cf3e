"""Engines for the two supported databases, configured once so the store's statements need no dialect checks.

- SQLite (``sqlite+aiosqlite:///path``): WAL journal (readers never wait for the writer), a busy timeout so
  concurrent writers wait instead of failing, ``synchronous=NORMAL`` (safe with WAL) and foreign keys on. The
  file's directory is created when missing.
- PostgreSQL (``postgresql+asyncpg://...``): a bounded pool that checks connections before use, so replicas outlive
  a database restart or failover. Connections run in autocommit: nearly every store call is one statement, which is
  atomic by itself, and costs one round trip instead of three (BEGIN, statement, COMMIT); the pre-ping too is one
  round trip instead of three. Calls of several statements use :func:`transactional`.
"""

from __future__ import annotations

import asyncio
import logging
from pathlib import Path
from typing import Any, Final

from sqlalchemy import event
from sqlalchemy.engine import URL
from sqlalchemy.exc import OperationalError
from sqlalchemy.ext.asyncio import AsyncEngine, create_async_engine
from sqlalchemy.pool import AsyncAdaptedQueuePool

SUPPORTED_DIALECTS: Final = ("sqlite", "postgresql")
# How long a SQLite writer waits for another process's write lock before giving up.
SQLITE_BUSY_TIMEOUT_SECONDS: Final = 30
# The size a WAL is cut back to when SQLite starts it over: a burst of writes (a large purge, a spike of traffic)
# grows the file, which SQLite otherwise keeps at its largest size for good. Steady load stays well below it.
SQLITE_WAL_SIZE_LIMIT_BYTES: Final = 64 * 1024 * 1024


def _sqlite_connection_settings(dbapi_connection: Any, _record: Any) -> None:
    """Per-connection settings (the journal mode is a property of the file: see :func:`enable_sqlite_wal`)."""
    cursor = dbapi_connection.cursor()
    try:
        cursor.execute(f"PRAGMA busy_timeout = {SQLITE_BUSY_TIMEOUT_SECONDS * 1000}")
        cursor.execute("PRAGMA synchronous = NORMAL")
        cursor.execute("PRAGMA foreign_keys = ON")
        cursor.execute(f"PRAGMA journal_size_limit = {SQLITE_WAL_SIZE_LIMIT_BYTES}")
    finally:
        cursor.close()


def is_memory_database(url: URL) -> bool:
    return url.database in (None, "", ":memory:")


def _silence_parameter_logging() -> None:
    # aiosqlite logs every statement with its parameters at DEBUG, and those parameters include private
    # signing keys and session CSRF secrets: keep that logger at INFO whatever the application's level.
    aiosqlite_logger = logging.getLogger("aiosqlite")
    if aiosqlite_logger.getEffectiveLevel() < logging.INFO:
        aiosqlite_logger.setLevel(logging.INFO)


def create_engine_for(url: URL) -> AsyncEngine:
    """An engine configured for the dialect of ``url``; ``ValueError`` for any other database."""
    dialect = url.get_backend_name()
    _silence_parameter_logging()
    if dialect == "sqlite":
        if is_memory_database(url):
            # Each connection to ":memory:" is a database of its own: keep exactly one, lent to one task at a time.
            engine = create_async_engine(
                url, poolclass=AsyncAdaptedQueuePool, pool_size=1, max_overflow=0, hide_parameters=True
            )
        else:
            Path(str(url.database)).expanduser().parent.mkdir(parents=True, exist_ok=True)
            engine = create_async_engine(
                url, connect_args={"timeout": SQLITE_BUSY_TIMEOUT_SECONDS}, hide_parameters=True
            )
        event.listen(engine.sync_engine, "connect", _sqlite_connection_settings)
        return engine
    if dialect == "postgresql":
        return _postgresql_engine(url, pool_pre_ping=True, pool_size=10, max_overflow=10)
    raise ValueError(
        f"unsupported database {dialect!r} in {url.render_as_string(hide_password=True)!r}; supported: "
        "sqlite+aiosqlite:///path/to/file.db, postgresql+asyncpg://user:password@host/database"
    )


# Connections of the PostgreSQL engine for the group commit's flushes (see create_append_engine_for): one per
# table (each table's group commit has one flush in flight).
APPEND_POOL_SIZE: Final = 2


def create_append_engine_for(url: URL) -> AsyncEngine | None:
    """On PostgreSQL, a second engine for the token endpoint's group-committed inserts, without the pre-ping: on
    the main engine a flush would pay a round trip for the ping on top of its insert. A connection the database
    dropped fails its flush instead, is discarded, and the group commit writes the rows again one by one through
    the main engine, whose pre-ping replaces dead connections (sql.py, ``_append``). None elsewhere: SQLite
    flushes go through the store's own writer or the main engine."""
    if url.get_backend_name() != "postgresql":
        return None
    return _postgresql_engine(url, pool_pre_ping=False, pool_size=APPEND_POOL_SIZE, max_overflow=0)


def _postgresql_engine(url: URL, *, pool_pre_ping: bool, pool_size: int, max_overflow: int) -> AsyncEngine:
    """A PostgreSQL engine in autocommit (see the module's docstring), its pool sized by the caller."""
    return create_async_engine(
        url,
        isolation_level="AUTOCOMMIT",
        hide_parameters=True,
        pool_pre_ping=pool_pre_ping,
        pool_size=pool_size,
        max_overflow=max_overflow,
        pool_recycle=1800,
    )


def transactional(engine: AsyncEngine) -> AsyncEngine:
    """The engine for calls of several statements that must commit together.

    On PostgreSQL that undoes the autocommit default (asyncpg applies the level client-side: no extra round trip).
    SQLite's driver already opens a transaction at the first write and holds it until commit.
    """
    if engine.dialect.name == "postgresql":
        return engine.execution_options(isolation_level="READ COMMITTED")
    return engine


async def enable_sqlite_wal(engine: AsyncEngine) -> None:
    """Switch the database file to WAL (it stays so for every later connection).

    The switch needs an exclusive lock and SQLite does not wait for it (the busy timeout does not apply), so
    processes that open a new file at the same moment retry here, briefly, instead of failing.
    """
    loop = asyncio.get_running_loop()
    deadline = loop.time() + SQLITE_BUSY_TIMEOUT_SECONDS
    while True:
        try:
            async with engine.connect() as connection:
                await connection.exec_driver_sql("PRAGMA journal_mode = WAL")
            return
        except OperationalError as exc:
            if "locked" not in str(exc) or loop.time() > deadline:
                raise
        await asyncio.sleep(0.02)
