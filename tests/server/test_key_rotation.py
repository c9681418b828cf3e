"""Scheduled key rotation (``keys.rotation-interval``): driven by the server's refresh loop, decided once by the
database whatever the number of processes, the retired key kept in the JWKS for ``retired-key-grace``."""

from __future__ import annotations

import asyncio
from collections.abc import Callable
from contextlib import aclosing
from datetime import timedelta
from pathlib import Path
from typing import Any

import httpx
import pytest
from sqlalchemy.exc import OperationalError
from tests.server.configs import SERVICE_CLIENT, SERVICE_SECRET, server_config
from tests.server.conftest import FakeClock

from tokensmith import jose
from tokensmith.config.server import KeySettings
from tokensmith.resource import InvalidToken, TokenValidator
from tokensmith.server import app as server_app
from tokensmith.server.app import create_app
from tokensmith.server.key_encryption import KeyEncryptionKey
from tokensmith.server.keys import KeyManager
from tokensmith.store.sql import SqlStore

ISSUER = "http://testserver"
CLAIMS = {"iss": ISSUER, "sub": "alice", "aud": "report-api"}


async def eventually(condition: Callable[[], Any], within: float = 10.0) -> None:
    deadline = asyncio.get_running_loop().time() + within
    while not await condition():
        assert asyncio.get_running_loop().time() < deadline, "the refresh loop did not get there in time"
        await asyncio.sleep(0.02)


async def test_the_refresh_loop_rotates_and_the_retired_key_verifies_until_its_grace_ends(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr(server_app, "KEY_REFRESH_SECONDS", 0.02)
    clock = FakeClock()
    # Access tokens live 5 minutes: rotated after 2, the older token is still live; the grace is 10 minutes.
    keys = {"rotation-interval": "2m", "retired-key-grace": "10m"}
    config = server_config(f"sqlite+aiosqlite:///{tmp_path / 't.db'}", issuer=ISSUER, keys=keys)
    app = create_app(config, clock=clock)

    async def client_credentials_token(http: httpx.AsyncClient) -> str:
        form = {"grant_type": "client_credentials", "client_id": SERVICE_CLIENT, "client_secret": SERVICE_SECRET}
        response = await http.post("/oauth2/token", data=form)
        assert response.status_code == 200, response.text
        token: str = response.json()["access_token"]
        return token

    async def published(http: httpx.AsyncClient) -> set[str]:
        return {key["kid"] for key in (await http.get("/oauth2/jwks")).json()["keys"]}

    def validator(http: httpx.AsyncClient) -> TokenValidator:
        return TokenValidator(
            issuer=ISSUER, audience="report-api", http=http, clock=lambda: clock().timestamp(), refresh_cooldown=0
        )

    async with (
        app.router.lifespan_context(app),
        httpx.AsyncClient(transport=httpx.ASGITransport(app=app), base_url=ISSUER) as http,
    ):
        old_token = await client_credentials_token(http)
        old_kid = jose.parse(old_token).kid
        async with aclosing(validator(http)) as resource_server:
            assert (await resource_server.validate(old_token)).subject == SERVICE_CLIENT

            clock.advance(minutes=1)
            await asyncio.sleep(0.1)  # several rounds of the loop: not due yet
            assert jose.parse(await client_credentials_token(http)).kid == old_kid

            clock.advance(minutes=1)
            await eventually(lambda: _has_new_key(http, old_kid))
            new_token = await client_credentials_token(http)
            new_kid = jose.parse(new_token).kid
            assert new_kid != old_kid
            assert {old_kid, new_kid} <= await published(http)
            # The resource server meets the new kid, refetches, and still accepts the older token.
            assert (await resource_server.validate(new_token)).subject == SERVICE_CLIENT
            assert (await resource_server.validate(old_token)).subject == SERVICE_CLIENT

        clock.advance(minutes=10, seconds=1)
        await eventually(lambda: _lacks_key(http, old_kid))
        async with aclosing(validator(http)) as fresh_resource_server:
            with pytest.raises(InvalidToken, match="unknown key"):
                await fresh_resource_server.validate(old_token)
            fresh_token = await client_credentials_token(http)
            assert (await fresh_resource_server.validate(fresh_token)).subject == SERVICE_CLIENT


async def _has_new_key(http: httpx.AsyncClient, old_kid: str | None) -> bool:
    form = {"grant_type": "client_credentials", "client_id": SERVICE_CLIENT, "client_secret": SERVICE_SECRET}
    token = (await http.post("/oauth2/token", data=form)).json()["access_token"]
    return jose.parse(token).kid != old_kid


async def _lacks_key(http: httpx.AsyncClient, kid: str | None) -> bool:
    return kid not in {key["kid"] for key in (await http.get("/oauth2/jwks")).json()["keys"]}


async def test_processes_due_at_once_add_one_key_per_algorithm(store_url: str) -> None:
    url = store_url
    clock = FakeClock()
    kek = KeyEncryptionKey.generate()
    settings = KeySettings(rotation_interval=timedelta(days=1))
    stores = [SqlStore(url) for _ in range(4)]
    try:
        for store in stores:
            await store.initialize()
        managers = [KeyManager(store, settings, clock, encryption_key=kek) for store in stores]
        await asyncio.gather(*(manager.load() for manager in managers))  # starting together: one key per algorithm
        assert len(await stores[0].list_signing_keys()) == 2

        clock.advance(days=1)
        outcomes = await asyncio.gather(*(manager.maintain() for manager in managers), return_exceptions=True)
        # SQLite may refuse a writer whose snapshot another writer overtook ("database is locked", which the busy
        # timeout does not cover); the server's refresh loop logs it and runs maintain() again a minute later.
        for manager, outcome in zip(managers, outcomes, strict=True):
            if isinstance(outcome, BaseException):
                assert isinstance(outcome, OperationalError), outcome
                assert "locked" in str(outcome)
                await manager.maintain()
        records = await stores[0].list_signing_keys()
        assert sorted((r.alg, r.status) for r in records) == [
            ("ES256", "active"),
            ("ES256", "retired"),
            ("RS256", "active"),
            ("RS256", "retired"),
        ]
        await asyncio.gather(*(manager.refresh() for manager in managers))
        for alg in ("ES256", "RS256"):
            assert len({jose.parse(m.sign(CLAIMS, alg=alg)).kid for m in managers}) == 1
    finally:
        for store in stores:
            await store.close()


async def test_no_scheduled_rotation_without_an_interval(tmp_path: Path) -> None:
    store = SqlStore(f"sqlite+aiosqlite:///{tmp_path / 't.db'}")
    await store.initialize()
    try:
        clock = FakeClock()
        manager = KeyManager(store, KeySettings(), clock, encryption_key=KeyEncryptionKey.generate())
        await manager.load()
        kids = [r.kid for r in manager.records]
        clock.advance(days=3650)
        await manager.maintain()
        assert [r.kid for r in manager.records] == kids
    finally:
        await store.close()


async def test_a_key_already_due_at_start_is_rotated_at_start(tmp_path: Path) -> None:
    store = SqlStore(f"sqlite+aiosqlite:///{tmp_path / 't.db'}")
    await store.initialize()
    try:
        clock = FakeClock()
        kek = KeyEncryptionKey.generate()
        first = KeyManager(store, KeySettings(), clock, encryption_key=kek)
        await first.load()
        clock.advance(days=30)
        restarted = KeyManager(store, KeySettings(rotation_interval=timedelta(days=7)), clock, encryption_key=kek)
        await restarted.load()
        active = {r.kid for r in restarted.records if r.status == "active"}
        assert active.isdisjoint(r.kid for r in first.records)
        assert len(active) == 2
    finally:
        await store.close()
