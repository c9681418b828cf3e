"""Login throttling must hold under concurrency (guesses sent all at once are counted before they are checked),
and must never let an attacker lock the owner out: the owner, elsewhere, gets in within ``max-backoff``.

Before the first fix a failure was counted only after the (slow, off-loop) password check, so a burst of parallel
guesses all passed the "blocked?" test before the first failure was recorded: the limit did not limit.
"""

from __future__ import annotations

import asyncio
import time
from pathlib import Path

import httpx
from tests.server.browser import hidden_fields
from tests.server.configs import PASSWORD, USERNAME, server_config
from tests.support.server import running_server

from tokensmith.server.app import create_app

MAX_FAILURES = 3
BURST = 12


async def test_parallel_guesses_are_throttled() -> None:
    config = server_config(
        login={"max-failures-per-user-and-address": MAX_FAILURES, "max-failures-per-address": 100, "max-backoff": "0s"}
    )
    async with running_server(config) as url, httpx.AsyncClient(base_url=url, timeout=30) as http:
        fields = hidden_fields((await http.get("/login")).text)

        async def guess(n: int) -> int:
            data = {**fields, "username": USERNAME, "password": f"guess {n}"}
            return (await http.post("/login", data=data)).status_code

        statuses = await asyncio.gather(*(guess(n) for n in range(BURST)))
        assert statuses.count(401) <= MAX_FAILURES, statuses
        assert statuses.count(429) >= BURST - MAX_FAILURES, statuses
        # From this address, even the right password waits out the window now.
        fields = hidden_fields((await http.get("/login")).text)
        right = await http.post("/login", data={**fields, "username": USERNAME, "password": PASSWORD})
        assert right.status_code == 429


async def test_a_successful_login_does_not_count_against_the_address() -> None:
    config = server_config(login={"max-failures-per-user-and-address": 100, "max-failures-per-address": 2})
    async with running_server(config) as url, httpx.AsyncClient(base_url=url, timeout=30) as http:
        fields = hidden_fields((await http.get("/login")).text)
        for _ in range(3):
            ok = await http.post("/login", data={**fields, "username": USERNAME, "password": PASSWORD})
            assert ok.status_code == 303, ok.text
            fields = hidden_fields((await http.get("/login")).text)
        wrong = await http.post("/login", data={**fields, "username": USERNAME, "password": "nope"})
        assert wrong.status_code == 401


async def test_an_attacker_cannot_lock_the_owner_out(tmp_path: Path) -> None:
    config = server_config(
        f"sqlite+aiosqlite:///{tmp_path / 'throttle.db'}",
        login={"max-failures-per-user-and-address": 5, "max-failures-per-address": 20, "max-backoff": "1s"},
    )
    app = create_app(config)

    def from_address(address: str) -> httpx.AsyncClient:
        transport = httpx.ASGITransport(app=app, client=(address, 40000))
        return httpx.AsyncClient(transport=transport, base_url=config.issuer)

    async def sign_in(http: httpx.AsyncClient, password: str) -> int:
        fields = hidden_fields((await http.get("/login")).text)
        return (await http.post("/login", data={**fields, "username": USERNAME, "password": password})).status_code

    async with (
        app.router.lifespan_context(app),
        from_address("203.0.113.7") as attacker,
        from_address("192.0.2.1") as owner,
    ):
        guesses = [await sign_in(attacker, f"guess {n}") for n in range(20)]
        assert guesses.count(401) == 5, guesses  # guessing from one address is stopped...
        assert guesses.count(429) == 15, guesses
        started = time.monotonic()
        assert await sign_in(owner, PASSWORD) == 303  # ...but the owner, elsewhere, signs in
        assert time.monotonic() - started < 1.5 + 1  # after at most max-backoff (and the password check)
