"""Fixtures for the security tests: a running server per module, with login throttling loose enough that
tests probing the login path are not stopped by it (tests of the throttle itself start their own server)."""

from __future__ import annotations

from collections.abc import AsyncIterator

import httpx
import pytest
from tests.server.browser import Browser
from tests.server.configs import server_config
from tests.support.server import running_server

LOOSE_LOGIN = {"max-failures-per-user-and-address": 1000, "max-failures-per-address": 1000, "max-backoff": "0s"}


@pytest.fixture(scope="module")
async def base_url() -> AsyncIterator[str]:
    async with running_server(server_config(login=LOOSE_LOGIN)) as url:
        yield url


@pytest.fixture
async def http(base_url: str) -> AsyncIterator[httpx.AsyncClient]:
    async with httpx.AsyncClient(base_url=base_url, follow_redirects=False, timeout=10) as client:
        yield client


@pytest.fixture
def browser(http: httpx.AsyncClient) -> Browser:
    return Browser(http)
