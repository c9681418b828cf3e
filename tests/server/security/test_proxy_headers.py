"""X-Forwarded-For is trusted only from the proxies ``forwarded-allow-ips`` names: otherwise a client could give
each guess a new address and the login throttle's per-address limit would never trip."""

from __future__ import annotations

import httpx
from tests.server.browser import hidden_fields
from tests.server.configs import server_config
from tests.support.server import running_server

LIMITS = {"max-failures-per-user-and-address": 100, "max-failures-per-address": 2}


async def guesses_with_forged_addresses(url: str) -> list[int]:
    async with httpx.AsyncClient(base_url=url, timeout=30) as http:
        statuses = []
        for n in range(4):
            fields = hidden_fields((await http.get("/login")).text)
            response = await http.post(
                "/login",
                data={**fields, "username": f"someone-{n}", "password": "guess"},
                headers={"X-Forwarded-For": f"203.0.113.{n}"},
            )
            statuses.append(response.status_code)
        return statuses


async def test_a_forged_x_forwarded_for_does_not_reset_the_address_count() -> None:
    async with running_server(server_config(login=LIMITS)) as url:
        assert await guesses_with_forged_addresses(url) == [401, 401, 429, 429]


async def test_x_forwarded_for_from_a_configured_proxy_names_the_client() -> None:
    config = server_config(login=LIMITS, **{"forwarded-allow-ips": ["127.0.0.1"]})
    async with running_server(config) as url:
        assert await guesses_with_forged_addresses(url) == [401, 401, 401, 401]
