"""Liveness, readiness, and what every endpoint answers while the database is down (PostgreSQL stopped and
started again under a running server): 503 with Retry-After and RFC 6749 error JSON, never a 500, and recovery
without a restart once the database is back."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator, Iterator

import httpx
import pytest
from tests.server.browser import basic_auth
from tests.server.configs import SERVICE_CLIENT, SERVICE_SECRET, server_config
from tests.support.components import missing_component
from tests.support.postgres import PostgresUnavailable, TemporaryCluster, start_temporary_cluster
from tests.support.server import running_server

SERVICE = {"grant_type": "client_credentials", "client_id": SERVICE_CLIENT, "client_secret": SERVICE_SECRET}


async def test_healthz_health_and_readyz_when_all_is_well() -> None:
    async with running_server(server_config()) as url, httpx.AsyncClient(base_url=url) as http:
        for path in ("/healthz", "/health"):
            response = await http.get(path)
            assert response.status_code == 200
            assert response.json() == {"status": "ok"}
        ready = await http.get("/readyz")
        assert ready.status_code == 200
        assert ready.json() == {"status": "ready", "checks": {"database": "ok", "signing_keys": "ok"}}


@pytest.fixture
def own_cluster() -> Iterator[TemporaryCluster]:
    """A PostgreSQL server of this test's own, to stop and start (the session's is shared by other tests)."""
    try:
        cluster = start_temporary_cluster()
    except (PostgresUnavailable, OSError) as exc:
        missing_component(f"PostgreSQL unavailable: {exc}")
    try:
        yield cluster
    finally:
        cluster.stop()


@pytest.fixture
async def server_on_own_cluster(own_cluster: TemporaryCluster) -> AsyncIterator[str]:
    async with running_server(server_config(own_cluster.url)) as url:
        yield url


async def _until_ok(http: httpx.AsyncClient, seconds: float) -> float:
    loop = asyncio.get_running_loop()
    start = loop.time()
    while True:
        response = await http.post("/oauth2/token", data=SERVICE)
        assert response.status_code in (200, 503), response.text
        if response.status_code == 200:
            return loop.time() - start
        assert loop.time() - start < seconds, "no recovery"
        await asyncio.sleep(0.2)


@pytest.mark.postgres
async def test_database_down_is_503_then_recovers(server_on_own_cluster: str, own_cluster: TemporaryCluster) -> None:
    async with httpx.AsyncClient(base_url=server_on_own_cluster, timeout=30) as http:
        assert (await http.post("/oauth2/token", data=SERVICE)).status_code == 200
        await asyncio.to_thread(own_cluster.shut_down)
        down = [
            await http.post("/oauth2/token", data=SERVICE),
            await http.post("/oauth2/introspect", data={"token": "x"}, headers=basic_auth()),
            await http.post("/oauth2/revoke", data={"token": "x"}, headers=basic_auth()),
        ]
        for response in down:
            assert response.status_code == 503, response.text
            assert response.headers["retry-after"].isdigit()
            assert response.headers["cache-control"] == "no-store"
            assert response.json()["error"] == "temporarily_unavailable"
            assert "Traceback" not in response.text
        assert (await http.get("/healthz")).status_code == 200
        not_ready = await http.get("/readyz")
        assert not_ready.status_code == 503
        assert not_ready.json()["checks"]["database"] != "ok"
        assert not_ready.json()["checks"]["signing_keys"] == "ok"
        await asyncio.to_thread(own_cluster.start)
        await _until_ok(http, 30)
        assert (await http.get("/readyz")).status_code == 200
