"""Login throttling must hold under concurrency: guesses sent all at once are counted before they are checked.

Before the fix a failure was counted only after the (slow, off-loop) password check, so a burst of parallel
guesses all passed the "blocked?" test before the first failure was recorded: the limit did not limit.
"""

from __future__ import annotations

import asyncio

import httpx
from tests.server.browser import hidden_fields
from tests.server.configs import PASSWORD, USERNAME, server_config
from tests.support.server import running_server

MAX_FAILURES = 3
BURST = 12


async def test_parallel_guesses_are_throttled() -> None:
    config = server_config(login={"max-failures-per-user": MAX_FAILURES, "max-failures-per-address": 100})
    async with running_server(config) as url, httpx.AsyncClient(base_url=url, timeout=30) as http:
        fields = hidden_fields((await http.get("/login")).text)

        async def guess(n: int) -> int:
            data = {**fields, "username": USERNAME, "password": f"guess {n}"}
            return (await http.post("/login", data=data)).status_code

        statuses = await asyncio.gather(*(guess(n) for n in range(BURST)))
        assert statuses.count(401) <= MAX_FAILURES, statuses
        assert statuses.count(429) >= BURST - MAX_FAILURES, statuses
        # Even the right password waits out the window now.
        fields = hidden_fields((await http.get("/login")).text)
        right = await http.post("/login", data={**fields, "username": USERNAME, "password": PASSWORD})
        assert right.status_code == 429


async def test_a_successful_login_does_not_count_against_the_address() -> None:
    config = server_config(login={"max-failures-per-user": 100, "max-failures-per-address": 2})
    async with running_server(config) as url, httpx.AsyncClient(base_url=url, timeout=30) as http:
        fields = hidden_fields((await http.get("/login")).text)
        for _ in range(3):
            ok = await http.post("/login", data={**fields, "username": USERNAME, "password": PASSWORD})
            assert ok.status_code == 303, ok.text
            fields = hidden_fields((await http.get("/login")).text)
        wrong = await http.post("/login", data={**fields, "username": USERNAME, "password": "nope"})
        assert wrong.status_code == 401
