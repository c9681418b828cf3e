"""Fixtures for the authorization server tests: a protocol context over a real SQLite store and a settable clock."""

from __future__ import annotations

from collections.abc import AsyncIterator
from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest
from tests.server.configs import server_config

from tokensmith.config.server import ServerConfig
from tokensmith.server.core.context import ServerContext
from tokensmith.server.core.wiring import build_context
from tokensmith.server.key_encryption import KeyEncryptionKey
from tokensmith.server.keys import KeyManager
from tokensmith.store import open_store


class FakeClock:
    """A clock tests move by hand."""

    def __init__(self) -> None:
        self.now = datetime.now(UTC).replace(microsecond=0)

    def __call__(self) -> datetime:
        return self.now

    def advance(self, **delta: float) -> None:
        self.now += timedelta(**delta)


@pytest.fixture
def clock() -> FakeClock:
    return FakeClock()


@pytest.fixture
def config(tmp_path: Path) -> ServerConfig:
    return server_config(f"sqlite+aiosqlite:///{tmp_path / 'tokensmith.db'}")


@pytest.fixture
async def ctx(config: ServerConfig, clock: FakeClock) -> AsyncIterator[ServerContext]:
    store = open_store(config.database_url)
    await store.initialize()
    try:
        keys = KeyManager(store, config.keys, clock, encryption_key=KeyEncryptionKey.generate())
        await keys.load()
        ctx = build_context(config, store, keys, clock)
        try:
            yield ctx
        finally:
            await ctx.aclose()
    finally:
        await store.close()
