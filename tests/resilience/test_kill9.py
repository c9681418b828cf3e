"""``kill -9`` of ``tokensmith serve`` (SQLite, durability ``full``) under concurrent client-credentials grants and
token exchanges, then a restart on the same database: every token a client was handed is still known (its row is
there, introspection says active) and every exchange a client was granted has its audit event."""

from __future__ import annotations

import asyncio
from pathlib import Path

import httpx
import pytest
from tests.resilience.support import claims_of, report, run_load, server_data, user_tokens
from tests.server.browser import basic_auth
from tests.support.serve_process import serve_process

from tokensmith.store import open_store

pytestmark = pytest.mark.resilience

LOAD_BEFORE_KILL_SECONDS = 4.0


async def test_kill9_under_load_loses_nothing_handed_out(tmp_path: Path) -> None:
    database_url = f"sqlite+aiosqlite:///{tmp_path / 'ts.db'}"
    data = server_data(database_url, **{"database-durability": "full"})
    with serve_process(data, tmp_path) as server:
        subject = (await user_tokens(server.url))["access_token"]
        stop = asyncio.Event()
        load_task = asyncio.create_task(run_load(server.url, subject, workers=8, seconds=60, stop=stop))
        await asyncio.sleep(LOAD_BEFORE_KILL_SECONDS)
        server.kill9()
        await asyncio.sleep(0.5)
        stop.set()
        load = await load_task
        server.start()  # the same database, the same port
        handed_out = load.client_credentials_tokens + load.exchanged_tokens
        assert len(handed_out) > 50, load
        store = open_store(database_url)
        try:
            missing = [t for t in handed_out if await store.get_issued_token(claims_of(t)["jti"]) is None]
            events = await store.list_audit_events(limit=len(load.exchanged_tokens) * 2 + 100)
        finally:
            await store.close()
        audited = {
            e.details.get("issued_jti") for e in events if e.event == "token_exchange" and e.outcome == "granted"
        }
        unaudited = [t for t in load.exchanged_tokens if claims_of(t)["jti"] not in audited]
        sample = handed_out[-100:]  # the newest: the ones closest to the kill
        async with httpx.AsyncClient(base_url=server.url, timeout=15) as http:
            inactive = 0
            for token in sample:
                answer = await http.post("/oauth2/introspect", data={"token": token}, headers=basic_auth())
                inactive += answer.json().get("active") is not True
    report(
        "kill9",
        requests=load.requests,
        tokens_handed_out=len(handed_out),
        exchanges_granted=len(load.exchanged_tokens),
        failed_by_the_kill=load.errors,
        rows_missing_after_restart=len(missing),
        granted_exchanges_without_audit_event=len(unaudited),
        introspected=len(sample),
        introspected_inactive=inactive,
    )
    assert not missing
    assert not unaudited
    assert inactive == 0
    assert set(load.statuses) == {200}, load.bodies
