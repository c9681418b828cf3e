"""Engines for the two supported databases, configured once so the store's statements need no dialect checks.

- SQLite (``sqlite+aiosqlite:///path``): WAL journal (readers never wait for the writer), a busy timeout so
  concurrent writers wait instead of failing, foreign keys on, and ``synchronous`` set by the durability. A new
  database file is created readable by its owner only (0600); SQLite gives its ``-wal`` and ``-shm`` files the
  same mode. The file's directory is created when missing.
- PostgreSQL (``postgresql+asyncpg://...``): a bounded pool that checks connections before use, so replicas outlive
  a database restart or failover, and ``synchronous_commit`` set by the durability. Connections run in autocommit:
  nearly every store call is one statement, which is atomic by itself, and costs one round trip instead of three
  (BEGIN, statement, COMMIT). Calls of several statements use :func:`transactional`.

Durability (``database-durability``): ``full`` returns from a commit once it is on disk, so a power loss loses
nothing a caller was told is committed (SQLite ``synchronous=FULL`` in WAL mode, PostgreSQL
``synchronous_commit=on``); ``normal`` survives a crash of the process but may lose the last commits on a power
loss or an operating-system crash (SQLite ``synchronous=NORMAL``, PostgreSQL ``synchronous_commit=off``).
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import os
from collections.abc import Awaitable, Callable
from functools import partial
from pathlib import Path
from typing import Any, Final, TypeVar

from sqlalchemy import event
from sqlalchemy.engine import URL, make_url
from sqlalchemy.exc import OperationalError
from sqlalchemy.ext.asyncio import AsyncEngine, create_async_engine
from sqlalchemy.pool import AsyncAdaptedQueuePool

from tokensmith.store.base import Durability

T = TypeVar("T")

SUPPORTED_DIALECTS: Final = ("sqlite", "postgresql")
# How long a SQLite writer waits for another process's write lock before giving up.
SQLITE_BUSY_TIMEOUT_SECONDS: Final = 30
# The size a WAL is cut back to when SQLite starts it over: a burst of writes (a large purge, a spike of traffic)
# grows the file, which SQLite otherwise keeps at its largest size for good. Steady load stays well below it.
SQLITE_WAL_SIZE_LIMIT_BYTES: Final = 64 * 1024 * 1024
SQLITE_SYNCHRONOUS: Final[dict[Durability, str]] = {"full": "FULL", "normal": "NORMAL"}
POSTGRESQL_SYNCHRONOUS_COMMIT: Final[dict[Durability, str]] = {"full": "on", "normal": "off"}
# A new database file: read and written by the server's user only (it holds private keys and token digests).
DATABASE_FILE_MODE: Final = 0o600


def _sqlite_connection_settings(synchronous: str, dbapi_connection: Any, _record: Any) -> None:
    """Per-connection settings (the journal mode is a property of the file: see :func:`enable_sqlite_wal`)."""
    cursor = dbapi_connection.cursor()
    try:
        cursor.execute(f"PRAGMA busy_timeout = {SQLITE_BUSY_TIMEOUT_SECONDS * 1000}")
        cursor.execute(f"PRAGMA synchronous = {synchronous}")
        cursor.execute("PRAGMA foreign_keys = ON")
        cursor.execute(f"PRAGMA journal_size_limit = {SQLITE_WAL_SIZE_LIMIT_BYTES}")
    finally:
        cursor.close()


def is_memory_database(url: URL) -> bool:
    return url.database in (None, "", ":memory:")


def sqlite_database_file(database_url: str) -> Path | None:
    """The file of a SQLite database URL (as its engine opens it); None for an in-memory one and other databases."""
    url = make_url(database_url)
    if url.get_backend_name() != "sqlite" or is_memory_database(url):
        return None
    return Path(str(url.database)).expanduser()


def create_private_file(path: Path) -> None:
    """Create ``path`` empty with mode 0600 unless it exists (SQLite takes an empty file for a new database). An
    existing file keeps the mode its owner gave it."""
    path.parent.mkdir(parents=True, exist_ok=True)
    with contextlib.suppress(FileExistsError):
        os.close(os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, DATABASE_FILE_MODE))


def _silence_parameter_logging() -> None:
    # aiosqlite logs every statement with its parameters at DEBUG, and those parameters include private
    # signing keys and session CSRF secrets: keep that logger at INFO whatever the application's level.
    aiosqlite_logger = logging.getLogger("aiosqlite")
    if aiosqlite_logger.getEffectiveLevel() < logging.INFO:
        aiosqlite_logger.setLevel(logging.INFO)


def create_engine_for(url: URL, durability: Durability = "full") -> AsyncEngine:
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
            create_private_file(Path(str(url.database)).expanduser())
            # A pool that keeps its connections open (SQLAlchemy's default for a file only since 2.0.38): each
            # connection's settings run once, and the -wal and -shm files stay while the store is open.
            engine = create_async_engine(
                url,
                poolclass=AsyncAdaptedQueuePool,
                connect_args={"timeout": SQLITE_BUSY_TIMEOUT_SECONDS},
                hide_parameters=True,
            )
        event.listen(
            engine.sync_engine, "connect", partial(_sqlite_connection_settings, SQLITE_SYNCHRONOUS[durability])
        )
        return engine
    if dialect == "postgresql":
        return create_async_engine(
            url,
            isolation_level="AUTOCOMMIT",
            hide_parameters=True,
            pool_pre_ping=True,
            pool_size=10,
            max_overflow=10,
            pool_recycle=1800,
            connect_args={"server_settings": {"synchronous_commit": POSTGRESQL_SYNCHRONOUS_COMMIT[durability]}},
        )
    raise ValueError(
        f"unsupported database {dialect!r} in {url.render_as_string(hide_password=True)!r}; supported: "
        "sqlite+aiosqlite:///path/to/file.db, postgresql+asyncpg://user:password@host/database"
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
    processes that open a new file at the same moment retry (:func:`retry_while_locked`) instead of failing.
    """

    async def switch() -> None:
        async with engine.connect() as connection:
            await connection.exec_driver_sql("PRAGMA journal_mode = WAL")

    await retry_while_locked(switch)


async def retry_while_locked(operation: Callable[[], Awaitable[T]]) -> T:
    """``operation``'s result, running it again while SQLite answers "database is locked", for up to the busy
    timeout: for what processes that open one database file together do at start (the switch to WAL, the schema
    migration), where SQLite may refuse at once instead of waiting. ``operation`` must leave nothing half-done when
    it fails (one transaction)."""
    loop = asyncio.get_running_loop()
    deadline = loop.time() + SQLITE_BUSY_TIMEOUT_SECONDS
    while True:
        try:
            return await operation()
        except OperationalError as exc:
            if "locked" not in str(exc) or loop.time() > deadline:
                raise
        await asyncio.sleep(0.02)
