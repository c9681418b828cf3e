"""A soak: the server's capacity for client-credentials grants and token exchanges is measured briefly (closed
loop), then the same mix is sent at half of it for ``RESILIENCE_SOAK_SECONDS`` (30 s by default, 600 s under
`make resilience`): no errors, and the server's resident memory flat after warm-up (its slope printed)."""

from __future__ import annotations

import asyncio
from pathlib import Path

import pytest
from tests.resilience.support import (
    SOAK_SECONDS,
    RenewedUserToken,
    percentile,
    report,
    run_load,
    server_data,
    slope_per_minute,
    user_tokens,
)
from tests.support.serve_process import ServeProcess, serve_process

pytestmark = [pytest.mark.resilience, pytest.mark.timeout(SOAK_SECONDS + 180)]

CAPACITY_SECONDS = 8.0
WORKERS = 8
SAMPLE_EVERY_SECONDS = 2.0
# Memory grows while caches, the SQLite page cache and the allocator's arenas fill; judged after this part.
WARM_UP_FRACTION = 0.3
MAX_SLOPE_MB_PER_MINUTE = 5.0


async def sample_memory(server: ServeProcess, stop: asyncio.Event, samples: list[tuple[float, float]]) -> None:
    loop = asyncio.get_running_loop()
    start = loop.time()
    while not stop.is_set():
        samples.append((loop.time() - start, server.rss_mb()))
        try:
            await asyncio.wait_for(stop.wait(), SAMPLE_EVERY_SECONDS)
        except TimeoutError:
            continue


async def test_soak_at_half_capacity(tmp_path: Path) -> None:
    with serve_process(server_data(f"sqlite+aiosqlite:///{tmp_path / 'ts.db'}"), tmp_path) as server:
        tokens = await user_tokens(server.url)
        # The exchanges' subject token outlives a long soak only if renewed (access tokens live minutes).
        subject = RenewedUserToken(tokens["access_token"], tokens["refresh_token"])
        capacity = await run_load(server.url, subject, workers=WORKERS, seconds=CAPACITY_SECONDS)
        assert capacity.errors == 0, capacity.bodies
        rate = capacity.rate() / 2
        stop = asyncio.Event()
        samples: list[tuple[float, float]] = []
        sampler = asyncio.create_task(sample_memory(server, stop, samples))
        renewer = asyncio.create_task(subject.renew_until(server.url, stop, min(60.0, SOAK_SECONDS / 3)))
        soak = await run_load(server.url, subject, workers=WORKERS, seconds=SOAK_SECONDS, rate=rate)
        stop.set()
        await sampler
        renewed = await renewer
    settled = [sample for sample in samples if sample[0] >= SOAK_SECONDS * WARM_UP_FRACTION]
    slope = slope_per_minute(settled)
    report(
        "soak",
        capacity_per_s=capacity.rate(),
        capacity_p99_ms=percentile(capacity.latencies, 0.99) * 1000,
        soak_seconds=soak.seconds,
        soak_rate_per_s=soak.rate(),
        soak_requests=soak.requests,
        soak_errors=soak.errors,
        soak_p50_ms=percentile(soak.latencies, 0.5) * 1000,
        soak_p99_ms=percentile(soak.latencies, 0.99) * 1000,
        rss_start_mb=samples[0][1],
        rss_after_warm_up_mb=settled[0][1],
        rss_end_mb=samples[-1][1],
        rss_slope_mb_per_min=slope,
        subject_token_renewals=renewed,
    )
    assert soak.errors == 0, (soak.statuses, soak.transport_errors, soak.bodies)
    assert soak.rate() > rate * 0.8  # the pace was held
    assert slope < MAX_SLOPE_MB_PER_MINUTE
