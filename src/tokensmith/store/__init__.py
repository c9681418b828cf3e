"""Storage: one interface (:class:`Store`), one SQLAlchemy implementation for SQLite and PostgreSQL."""

from tokensmith.store.base import Consumed, Store

__all__ = ["Consumed", "Store"]
