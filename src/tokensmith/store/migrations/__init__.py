"""Alembic migrations of the tokensmith schema, shipped inside the package and applied by ``SqlStore.initialize``."""

from __future__ import annotations

from pathlib import Path
from typing import Final

from alembic import command
from alembic.config import Config
from sqlalchemy import Connection, text

MIGRATIONS_DIR: Final = Path(__file__).resolve().parent
# Replicas starting together serialise their migrations on this PostgreSQL advisory lock ("tokensmi" in ASCII).
MIGRATION_LOCK_KEY: Final = 0x746F6B656E736D69


def upgrade_to_head(connection: Connection) -> None:
    """Apply every pending migration, holding a lock so that processes starting together apply them once.

    The caller commits. The lock lasts until then: on PostgreSQL an advisory transaction lock (DDL is
    transactional there, so a waiter sees all of the schema or none of it); on SQLite the database write lock,
    taken up front with ``BEGIN IMMEDIATE`` (waiting out the busy timeout) rather than at the first DDL statement.
    """
    if connection.dialect.name == "postgresql":
        connection.execute(text("SELECT pg_advisory_xact_lock(:key)"), {"key": MIGRATION_LOCK_KEY})
    else:
        connection.exec_driver_sql("BEGIN IMMEDIATE")
    config = Config()
    config.set_main_option("script_location", str(MIGRATIONS_DIR))
    config.attributes["connection"] = connection
    command.upgrade(config, "head")
