"""The packaged Alembic migrations, driven the way a developer or operator would (no SqlStore in between)."""

from __future__ import annotations

import asyncio
import io

from alembic import command
from alembic.autogenerate import compare_metadata
from alembic.config import Config
from alembic.migration import MigrationContext
from sqlalchemy import Connection, inspect
from sqlalchemy.ext.asyncio import create_async_engine

from tokensmith.store.migrations import MIGRATIONS_DIR
from tokensmith.store.sql import SqlStore
from tokensmith.store.tables import metadata


def alembic_config(url: str, output: io.StringIO | None = None) -> Config:
    config = Config(output_buffer=output)
    config.set_main_option("script_location", str(MIGRATIONS_DIR))
    config.set_main_option("sqlalchemy.url", url)
    return config


async def table_names(url: str) -> set[str]:
    engine = create_async_engine(url)
    try:
        async with engine.connect() as connection:
            return set(await connection.run_sync(lambda sync: inspect(sync).get_table_names()))
    finally:
        await engine.dispose()


async def test_alembic_upgrade_and_downgrade_from_a_url(store_url: str) -> None:
    config = alembic_config(store_url)
    # env.py runs its own event loop when alembic is called without a connection, as the command line does.
    await asyncio.to_thread(command.upgrade, config, "head")
    assert set(metadata.tables) <= await table_names(store_url)

    await asyncio.to_thread(command.downgrade, config, "base")
    assert await table_names(store_url) == {"alembic_version"}

    # The server's initialize() brings a downgraded database back to head.
    store = SqlStore(store_url)
    try:
        await store.initialize()
        assert await store.list_signing_keys() == []
    finally:
        await store.close()


def test_offline_mode_writes_the_sql() -> None:
    output = io.StringIO()
    command.upgrade(alembic_config("postgresql+asyncpg://db.example/tokensmith", output), "head", sql=True)
    sql = output.getvalue()
    for table in metadata.tables:
        assert f"CREATE TABLE {table}" in sql
    assert "TIMESTAMP WITH TIME ZONE" in sql


async def test_migrated_schema_matches_the_tables(store: SqlStore) -> None:
    def differences(connection: Connection) -> list[object]:
        context = MigrationContext.configure(connection, opts={"compare_type": True})
        return list(compare_metadata(context, metadata))

    async with store.engine.connect() as connection:
        assert await connection.run_sync(differences) == []
