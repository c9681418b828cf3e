"""A fresh database on a PostgreSQL server of the test's own (``own_cluster``), to stop and start."""

from __future__ import annotations

import pytest
from tests.support.postgres import TemporaryCluster, create_database, new_database_name


@pytest.fixture
async def own_database(own_cluster: TemporaryCluster) -> str:
    """A fresh database on ``own_cluster`` (dropped with the cluster)."""
    return await create_database(own_cluster.url, new_database_name())
