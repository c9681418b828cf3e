"""RevocationCache: the token exchange's in-memory revocation check, against a real store."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator
from datetime import datetime, timedelta
from pathlib import Path

import pytest
from pydantic import ValidationError
from tests.support.records import NOW, SetClock, issued_token

from tokensmith.config.server import ServerConfig
from tokensmith.server.core.revocation_cache import RevocationCache
from tokensmith.store.sql import SqlStore


@pytest.fixture
async def stores(tmp_path: Path) -> AsyncIterator[tuple[SqlStore, SqlStore]]:
    """Two stores on one database: this process's, and another replica's."""
    url = f"sqlite+aiosqlite:///{tmp_path}/tokensmith.db"
    ours, theirs = SqlStore(url), SqlStore(url)
    await ours.initialize()
    await theirs.initialize()
    try:
        yield ours, theirs
    finally:
        await ours.close()
        await theirs.close()


async def test_revocations_made_before_start_are_loaded(stores: tuple[SqlStore, SqlStore]) -> None:
    ours, _ = stores
    for jti in ("revoked", "live"):
        await ours.record_issued_token(issued_token(jti))
    await ours.revoke_token_lineage("revoked", NOW)
    cache = RevocationCache(ours, refresh_interval=timedelta(seconds=60), clock=SetClock())
    assert await cache.is_revoked("revoked")
    assert not await cache.is_revoked("live")
    assert not await cache.is_revoked("never-issued")


async def test_this_processes_revocations_count_at_once(stores: tuple[SqlStore, SqlStore]) -> None:
    ours, _ = stores
    await ours.record_issued_token(issued_token("parent"))
    await ours.record_issued_token(issued_token("child", parent="parent"))
    cache = RevocationCache(ours, refresh_interval=timedelta(seconds=60), clock=SetClock())
    assert not await cache.is_revoked("child")
    await ours.revoke_token_lineage("parent", NOW)
    assert await cache.is_revoked("parent")
    assert await cache.is_revoked("child")  # the lineage, too


async def test_another_replicas_revocation_counts_within_the_interval(stores: tuple[SqlStore, SqlStore]) -> None:
    ours, theirs = stores
    await ours.record_issued_token(issued_token("t1"))
    cache = RevocationCache(ours, refresh_interval=timedelta(milliseconds=200), clock=SetClock())
    assert not await cache.is_revoked("t1")
    # Stamped a little before our last look, as a slow transaction on a replica would be: the overlap covers it.
    await theirs.revoke_token_lineage("t1", NOW - timedelta(seconds=5))
    assert not await cache.is_revoked("t1")  # the staleness window: documented in docs/deployment.md
    await asyncio.sleep(0.25)
    assert await cache.is_revoked("t1")


async def test_an_interval_of_zero_asks_the_database_every_time(stores: tuple[SqlStore, SqlStore]) -> None:
    ours, theirs = stores
    await ours.record_issued_token(issued_token("t1"))
    cache = RevocationCache(ours, refresh_interval=timedelta(0), clock=SetClock())
    assert not cache.enabled
    assert not await cache.is_revoked("t1")
    await theirs.revoke_token_lineage("t1", NOW)
    assert await cache.is_revoked("t1")


async def test_expired_tokens_leave_the_set(stores: tuple[SqlStore, SqlStore]) -> None:
    ours, _ = stores
    clock = SetClock()
    await ours.record_issued_token(issued_token("short", expires_in=10))
    await ours.revoke_token_lineage("short", NOW)
    cache = RevocationCache(ours, refresh_interval=timedelta(milliseconds=1), clock=clock)
    assert await cache.is_revoked("short")
    clock.now = NOW + timedelta(seconds=11)
    await asyncio.sleep(0.01)
    # Past its expiry the token is refused for that reason before revocation is looked at.
    assert not await cache.is_revoked("short")


async def test_concurrent_checks_share_one_poll(
    stores: tuple[SqlStore, SqlStore], monkeypatch: pytest.MonkeyPatch
) -> None:
    ours, _ = stores
    polls = 0
    original = ours.list_revoked_tokens

    async def counting(revoked_since: datetime, now: datetime) -> object:
        nonlocal polls
        polls += 1
        return await original(revoked_since, now)

    monkeypatch.setattr(ours, "list_revoked_tokens", counting)
    cache = RevocationCache(ours, refresh_interval=timedelta(seconds=60), clock=SetClock())
    results = await asyncio.gather(*(cache.is_revoked(f"j{i}") for i in range(20)))
    assert results == [False] * 20
    assert polls == 1


async def test_a_failed_poll_reaches_the_caller_and_the_next_check_retries(
    stores: tuple[SqlStore, SqlStore], monkeypatch: pytest.MonkeyPatch
) -> None:
    ours, _ = stores
    original = ours.list_revoked_tokens

    async def failing(revoked_since: datetime, now: datetime) -> object:
        raise OSError("database unavailable")

    monkeypatch.setattr(ours, "list_revoked_tokens", failing)
    cache = RevocationCache(ours, refresh_interval=timedelta(seconds=60), clock=SetClock())
    with pytest.raises(OSError, match="database unavailable"):
        await cache.is_revoked("t1")
    monkeypatch.setattr(ours, "list_revoked_tokens", original)
    assert not await cache.is_revoked("t1")


def test_the_refresh_interval_is_a_setting_that_may_be_zero_but_not_negative() -> None:
    assert ServerConfig().tokens.revocation_refresh_interval == timedelta(seconds=1)
    config = ServerConfig.model_validate({"tokens": {"revocation-refresh-interval": "0"}})
    assert config.tokens.revocation_refresh_interval == timedelta(0)
    assert ServerConfig.model_validate(
        {"tokens": {"revocation-refresh-interval": "250ms"}}
    ).tokens.revocation_refresh_interval == timedelta(milliseconds=250)
    with pytest.raises(ValidationError, match="must not be negative"):
        ServerConfig.model_validate({"tokens": {"revocation-refresh-interval": -1}})
