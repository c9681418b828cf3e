"""Storage: one interface (:class:`Store`), one SQLAlchemy implementation for SQLite and PostgreSQL."""

from collections.abc import AsyncIterator
from contextlib import asynccontextmanager

from tokensmith.store.base import Consumed, Durability, Store


def open_store(database_url: str, durability: Durability = "full") -> Store:
    """The store for ``database_url`` (``sqlite+aiosqlite:///file.db`` or ``postgresql+asyncpg://...``), its
    commits as durable as ``durability`` says (``full``: they survive a power loss; ``normal``: a process crash).

    Call ``await store.initialize()`` before use (it applies the migrations) and ``await store.close()`` at the end.
    SQLAlchemy is imported here, not at package import, so code that only needs the interface stays light.
    """
    from tokensmith.store.sql import SqlStore

    return SqlStore(database_url, durability)


@asynccontextmanager
async def opened_store(database_url: str) -> AsyncIterator[Store]:
    """:func:`open_store`, initialized (migrated) for the block and closed after it, also when initializing failed:
    for commands that use the database once."""
    store = open_store(database_url)
    try:
        await store.initialize()
        yield store
    finally:
        await store.close()


__all__ = ["Consumed", "Durability", "Store", "open_store", "opened_store"]
