"""The demo system on free ports (never the fixed 9001/8080-8082), one per test module, on a scratch database."""

from __future__ import annotations

from collections.abc import AsyncIterator
from pathlib import Path

import pytest
import pytest_asyncio
from tests.demo.support import with_test_clients

from tokensmith.demo.runner import DemoSystem
from tokensmith.demo.topology import Topology

FREE_PORTS = Topology("127.0.0.1", 0, 0, 0, 0)


def new_system(scratch: Path, *, dpop: bool = False) -> DemoSystem:
    return DemoSystem(
        FREE_PORTS,
        database_url=f"sqlite+aiosqlite:///{scratch / 'demo.db'}",
        adjust_server_config=with_test_clients,
        dpop=dpop,
    )


@pytest_asyncio.fixture(scope="module", loop_scope="session")
async def demo_system(tmp_path_factory: pytest.TempPathFactory) -> AsyncIterator[DemoSystem]:
    async with new_system(tmp_path_factory.mktemp("demo")) as system:
        yield system


@pytest_asyncio.fixture(scope="module", loop_scope="session")
async def dpop_demo_system(tmp_path_factory: pytest.TempPathFactory) -> AsyncIterator[DemoSystem]:
    """The DPoP variant (`tokensmith demo --dpop`)."""
    async with new_system(tmp_path_factory.mktemp("demo-dpop"), dpop=True) as system:
        yield system
