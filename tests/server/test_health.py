"""Liveness, readiness, and what every endpoint answers while the database is down (PostgreSQL stopped and
started again under a running server): 503 with Retry-After and RFC 6749 error JSON, never a 500, and recovery
without a restart once the database is back."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator

import httpx
import pytest
from sqlalchemy.exc import DBAPIError, IntegrityError, OperationalError
from tests.server.browser import basic_auth
from tests.server.configs import SERVICE_CLIENT, SERVICE_SECRET, server_config
from tests.support.postgres import TemporaryCluster
from tests.support.server import running_server

from tokensmith.server.http.health import is_database_unavailable

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


class _DriverError(Exception):
    def __init__(self, sqlstate: str) -> None:
        super().__init__(sqlstate)
        self.sqlstate = sqlstate


def _wrapped(cause: BaseException) -> DBAPIError:
    """What SQLAlchemy raises for a driver's error: a DBAPIError caused by it."""
    try:
        raise DBAPIError("SELECT 1", None, cause) from cause
    except DBAPIError as exc:
        return exc


@pytest.mark.parametrize(
    ("error", "unavailable"),
    [
        (_wrapped(_DriverError("57P03")), True),  # the database system is starting up / shutting down
        (_wrapped(_DriverError("08006")), True),  # connection failure
        (_wrapped(ConnectionRefusedError()), True),
        (OperationalError("SELECT 1", None, Exception("database is locked")), True),
        (TimeoutError(), True),
        (_wrapped(_DriverError("23505")), False),  # a unique violation is a bug, not an outage
        (IntegrityError("INSERT", None, Exception("duplicate")), False),
    ],
)
def test_which_database_errors_mean_unavailable(error: BaseException, unavailable: bool) -> None:
    assert is_database_unavailable(error) is unavailable
