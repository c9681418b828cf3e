"""Fixtures shared by the whole suite: databases (SQLite and PostgreSQL) and an initialized store."""

from __future__ import annotations

import os
from collections.abc import AsyncIterator, Iterator
from typing import TYPE_CHECKING

import pytest
from tests.support.components import missing_component
from tests.support.postgres import (
    ENV_URL,
    PostgresUnavailable,
    TemporaryCluster,
    create_database,
    drop_database,
    new_database_name,
    start_temporary_cluster,
)

if TYPE_CHECKING:
    from tokensmith.store.sql import SqlStore


@pytest.fixture(scope="session")
def postgres_url() -> Iterator[str]:
    """A PostgreSQL database for the session: ``TOKENSMITH_TEST_POSTGRES_URL``, or a temporary cluster."""
    given = os.environ.get(ENV_URL)
    if given:
        yield given
        return
    try:
        cluster = start_temporary_cluster()
    except (PostgresUnavailable, OSError) as exc:
        missing_component(f"PostgreSQL unavailable: {exc}")
    try:
        yield cluster.url
    finally:
        cluster.stop()


@pytest.fixture
def own_cluster() -> Iterator[TemporaryCluster]:
    """A PostgreSQL server of a test's own, to stop and start (the session's is shared by other tests)."""
    try:
        cluster = start_temporary_cluster()
    except (PostgresUnavailable, OSError) as exc:
        missing_component(f"PostgreSQL unavailable: {exc}")
    try:
        yield cluster
    finally:
        cluster.stop()


@pytest.fixture
async def postgres_database_url(postgres_url: str) -> AsyncIterator[str]:
    """A fresh, empty PostgreSQL database for one test, dropped afterwards."""
    name = new_database_name()
    url = await create_database(postgres_url, name)
    try:
        yield url
    finally:
        await drop_database(postgres_url, name)


@pytest.fixture(params=["sqlite", pytest.param("postgres", marks=pytest.mark.postgres)])
async def store_url(request: pytest.FixtureRequest, tmp_path_factory: pytest.TempPathFactory) -> AsyncIterator[str]:
    """The URL of a fresh, empty database, once per dialect."""
    if request.param == "sqlite":
        yield f"sqlite+aiosqlite:///{tmp_path_factory.mktemp('store')}/tokensmith.db"
        return
    # Requested here, not in the signature, so SQLite runs never start PostgreSQL.
    server_url: str = request.getfixturevalue("postgres_url")
    name = new_database_name()
    url = await create_database(server_url, name)
    try:
        yield url
    finally:
        await drop_database(server_url, name)


@pytest.fixture
async def store(store_url: str) -> AsyncIterator[SqlStore]:
    """An initialized (migrated) store on a fresh database, closed after the test."""
    from tokensmith.store.sql import SqlStore  # SQLAlchemy only for the tests that use it

    sql_store = SqlStore(store_url)
    await sql_store.initialize()
    try:
        yield sql_store
    finally:
        await sql_store.close()
