"""What processes opening one SQLite file at once do at start: SQLite refusals retried within the busy timeout."""

from __future__ import annotations

import asyncio
from pathlib import Path

import pytest
from sqlalchemy.exc import OperationalError

from tokensmith.store import engine
from tokensmith.store.engine import retry_while_locked
from tokensmith.store.sql import SqlStore


def _refusal(message: str) -> OperationalError:
    return OperationalError("BEGIN IMMEDIATE", {}, Exception(message))


async def test_a_locked_database_is_tried_again_until_it_gives_way() -> None:
    attempts: list[int] = []

    async def migrate() -> str:
        attempts.append(len(attempts))
        if len(attempts) < 3:
            raise _refusal("database is locked")
        return "migrated"

    assert await retry_while_locked(migrate) == "migrated"
    assert len(attempts) == 3


async def test_other_errors_and_a_lock_held_past_the_busy_timeout_are_raised(monkeypatch: pytest.MonkeyPatch) -> None:
    attempts = 0

    async def broken() -> None:
        nonlocal attempts
        attempts += 1
        raise _refusal("no such table: signing_keys")

    with pytest.raises(OperationalError, match="no such table"):
        await retry_while_locked(broken)
    assert attempts == 1

    monkeypatch.setattr(engine, "SQLITE_BUSY_TIMEOUT_SECONDS", 0.1)

    async def held() -> None:
        raise _refusal("database is locked")

    started = asyncio.get_running_loop().time()
    with pytest.raises(OperationalError, match="locked"):
        await retry_while_locked(held)
    assert 0.1 <= asyncio.get_running_loop().time() - started < 5


async def test_stores_opening_one_new_file_at_once_all_start(tmp_path: Path) -> None:
    url = f"sqlite+aiosqlite:///{tmp_path}/t.db"
    stores = [SqlStore(url) for _ in range(4)]
    try:
        await asyncio.gather(*(store.initialize() for store in stores))
        assert all([await store.list_signing_keys() == [] for store in stores])
    finally:
        await asyncio.gather(*(store.close() for store in stores))
