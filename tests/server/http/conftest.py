"""One running authorization server per test module, real HTTP on 127.0.0.1."""

from __future__ import annotations

from collections.abc import AsyncIterator

import httpx
import pytest
from tests.server.browser import Browser
from tests.server.configs import server_config
from tests.support.server import running_server


@pytest.fixture(scope="module")
async def base_url() -> AsyncIterator[str]:
    async with running_server(server_config()) as url:
        yield url


@pytest.fixture
async def http(base_url: str) -> AsyncIterator[httpx.AsyncClient]:
    async with httpx.AsyncClient(base_url=base_url, follow_redirects=False, timeout=10) as client:
        yield client


@pytest.fixture
def browser(http: httpx.AsyncClient) -> Browser:
    return Browser(http)
