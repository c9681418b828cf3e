"""PostgreSQL restarted under load (client-credentials grants, token exchanges, refresh-token rotations of several
families): while it is down the server answers 503 (never a 500, never a dropped connection); once it is back
everything succeeds again without a restart of the server, and every refresh family still rotates."""

from __future__ import annotations

import asyncio
from pathlib import Path

import httpx
import pytest
from tests.resilience.support import report, run_load, server_data, user_tokens
from tests.server.browser import basic_auth
from tests.support.postgres import TemporaryCluster
from tests.support.serve_process import serve_process

pytestmark = [pytest.mark.resilience, pytest.mark.postgres]

FAMILIES = 4
UP_BEFORE_SECONDS = 3.0
DOWN_SECONDS = 4.0
UP_AFTER_SECONDS = 6.0
# After PostgreSQL accepts connections again, the pool's pre-ping replaces dead connections at their next use.
RECOVERY_ALLOWANCE_SECONDS = 2.0


async def rotate_family(base_url: str, refresh_token: str, stop: asyncio.Event, seen: list[tuple[float, int]]) -> str:
    """Rotate one refresh family until ``stop``; a 503 keeps the token in hand for the next try. Return the last."""
    loop = asyncio.get_running_loop()
    start = loop.time()
    async with httpx.AsyncClient(base_url=base_url, timeout=15) as http:
        while not stop.is_set():
            response = await http.post(
                "/oauth2/token",
                data={"grant_type": "refresh_token", "refresh_token": refresh_token},
                headers=basic_auth(),
            )
            seen.append((loop.time() - start, response.status_code))
            if response.status_code == 200:
                refresh_token = response.json()["refresh_token"]
            await asyncio.sleep(0.1)
    return refresh_token


async def test_postgres_restart_under_load(tmp_path: Path, own_cluster: TemporaryCluster, own_database: str) -> None:
    with serve_process(server_data(own_database), tmp_path) as server:
        families = [await user_tokens(server.url) for _ in range(FAMILIES)]
        subject = families[0]["access_token"]
        stop = asyncio.Event()
        loop = asyncio.get_running_loop()
        start = loop.time()
        refreshes: list[tuple[float, int]] = []
        rotations = [
            asyncio.create_task(rotate_family(server.url, f["refresh_token"], stop, refreshes)) for f in families
        ]
        total = UP_BEFORE_SECONDS + DOWN_SECONDS + UP_AFTER_SECONDS + 30
        load_task = asyncio.create_task(run_load(server.url, subject, workers=6, seconds=total, stop=stop))
        await asyncio.sleep(UP_BEFORE_SECONDS)
        down_at = loop.time() - start
        await asyncio.to_thread(own_cluster.shut_down)
        await asyncio.sleep(DOWN_SECONDS)
        await asyncio.to_thread(own_cluster.start)
        up_at = loop.time() - start
        await asyncio.sleep(UP_AFTER_SECONDS)
        stop.set()
        last_tokens = await asyncio.gather(*rotations)
        load = await load_task
        async with httpx.AsyncClient(base_url=server.url, timeout=15) as http:
            final = [
                (
                    await http.post(
                        "/oauth2/token",
                        data={"grant_type": "refresh_token", "refresh_token": token},
                        headers=basic_auth(),
                    )
                ).status_code
                for token in last_tokens
            ]
    answers = load.timeline + refreshes  # refresh times are from their own start, within ~0.1 s of the load's
    failures = [(t, status) for t, status in answers if status != 200]
    outside = [(t, s) for t, s in failures if not down_at - 0.5 <= t <= up_at + RECOVERY_ALLOWANCE_SECONDS]
    recovered_after = max((t for t, _ in failures), default=up_at) - up_at
    statuses = sorted({status for _, status in answers})
    report(
        "postgres_restart",
        requests=len(answers),
        down_seconds=up_at - down_at,
        answers_503=sum(status == 503 for _, status in answers),
        answers_500=sum(status == 500 for _, status in answers),
        dropped_connections=sum(status == 0 for _, status in answers),
        other_failures_outside_outage=len(outside),
        last_failure_after_restart_seconds=recovered_after,
        refresh_families=FAMILIES,
        refresh_families_alive=sum(status == 200 for status in final),
        statuses=statuses,
    )
    assert set(statuses) <= {200, 503}, (statuses, load.bodies)
    assert not outside, outside[:10]
    assert final == [200] * FAMILIES
