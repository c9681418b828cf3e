"""A PostgreSQL server of a test's own, to stop and start (the session's is shared by other tests)."""

from __future__ import annotations

from collections.abc import Iterator

import pytest
from tests.support.components import missing_component
from tests.support.postgres import (
    PostgresUnavailable,
    TemporaryCluster,
    create_database,
    new_database_name,
    start_temporary_cluster,
)


@pytest.fixture
def own_cluster() -> Iterator[TemporaryCluster]:
    try:
        cluster = start_temporary_cluster()
    except (PostgresUnavailable, OSError) as exc:
        missing_component(f"PostgreSQL unavailable: {exc}")
    try:
        yield cluster
    finally:
        cluster.stop()


@pytest.fixture
async def own_database(own_cluster: TemporaryCluster) -> str:
    """A fresh database on :func:`own_cluster` (dropped with the cluster)."""
    return await create_database(own_cluster.url, new_database_name())
