"""The server deletes expired rows on its own (`purge-interval`), in every process, and can be told not to."""

from __future__ import annotations

import asyncio
from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest
from pydantic import ValidationError
from tests.server.configs import server_config
from tests.support.store_batches import seed_expired_and_live_tokens

from tokensmith.server.app import create_app


async def test_the_server_purges_expired_rows_by_itself(tmp_path: Path) -> None:
    database_url = f"sqlite+aiosqlite:///{tmp_path / 'tokensmith.db'}"
    await seed_expired_and_live_tokens(database_url)
    app = create_app(server_config(database_url, **{"purge-interval": 0.2}))
    async with app.router.lifespan_context(app):
        store = app.state.runtime.ctx.store

        async def audit_reasons() -> list[str | None]:
            return [event.reason for event in await store.list_audit_events()]

        # Audit events past `audit-retention` (90 days by default) go in the same round, in a transaction of their
        # own after the tokens': wait for both.
        for _ in range(100):
            if await store.get_issued_token("expired") is None and await audit_reasons() == ["recent"]:
                break
            await asyncio.sleep(0.05)
        assert await store.get_issued_token("expired") is None
        assert await store.get_issued_token("live") is not None
        assert await audit_reasons() == ["recent"]


async def test_purge_interval_zero_turns_it_off(tmp_path: Path) -> None:
    database_url = f"sqlite+aiosqlite:///{tmp_path / 'tokensmith.db'}"
    await seed_expired_and_live_tokens(database_url)
    app = create_app(server_config(database_url, **{"purge-interval": 0}))
    async with app.router.lifespan_context(app):
        assert not [task for task in asyncio.all_tasks() if task.get_name() == "tokensmith-purge"]
        await asyncio.sleep(0.3)
        assert await app.state.runtime.ctx.store.get_issued_token("expired") is not None


def test_a_negative_purge_interval_is_refused() -> None:
    with pytest.raises(ValidationError, match="must not be negative"):
        server_config(**{"purge-interval": -1})


def test_audit_retention_defaults_to_90_days_and_zero_keeps_events_for_good() -> None:
    now = datetime(2026, 11, 26, tzinfo=UTC)
    assert server_config().audit_events_expire_before(now) == now - timedelta(days=90)
    assert server_config(**{"audit-retention": "7d"}).audit_events_expire_before(now) == now - timedelta(days=7)
    assert server_config(**{"audit-retention": 0}).audit_events_expire_before(now) is None
    with pytest.raises(ValidationError, match="must not be negative"):
        server_config(**{"audit-retention": -1})
