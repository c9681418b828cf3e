"""The authorization server down: a resource server (tokensmith.resource.TokenValidator) keeps validating the
tokens it was sent on the keys it had fetched, for as long as the issuer stays away."""

from __future__ import annotations

import asyncio
from pathlib import Path

import httpx
import pytest
from tests.resilience.support import CLIENT_CREDENTIALS, report, server_data
from tests.support.serve_process import serve_process

from tokensmith.resource import TokenValidator

pytestmark = pytest.mark.resilience

TOKENS = 50
DOWN_SECONDS = 5.0


async def test_resource_servers_validate_on_cached_keys(tmp_path: Path) -> None:
    with serve_process(server_data(f"sqlite+aiosqlite:///{tmp_path / 'ts.db'}"), tmp_path) as server:
        issuer = server.url
        async with httpx.AsyncClient(base_url=issuer, timeout=15) as http:
            tokens = [
                (await http.post("/oauth2/token", data=CLIENT_CREDENTIALS)).json()["access_token"]
                for _ in range(TOKENS)
            ]
        validator = TokenValidator(issuer=issuer, audience="report-api", refresh_cooldown=1.0, max_key_age=1.0)
        await validator.validate(tokens[0])  # the keys are fetched once, while the issuer is up
    # The server is stopped here (by PID): discovery and the JWK Set are unreachable from now on.
    try:
        async with httpx.AsyncClient(timeout=2) as http:
            with pytest.raises(httpx.TransportError):
                await http.get(issuer + "/healthz")
        loop = asyncio.get_running_loop()
        deadline = loop.time() + DOWN_SECONDS
        validated = rejected = 0
        while loop.time() < deadline:  # past max_key_age and the cool-down: background refreshes fail meanwhile
            for token in tokens:
                try:
                    await validator.validate(token)
                    validated += 1
                except Exception:  # any refusal counts
                    rejected += 1
            await asyncio.sleep(0.1)
        last_error = validator.keys.last_error
    finally:
        await validator.aclose()
    report(
        "issuer_down",
        down_seconds=DOWN_SECONDS,
        validations=validated,
        rejected=rejected,
        refetch_error=bool(last_error),
    )
    assert validated > TOKENS
    assert rejected == 0
    assert last_error is not None  # the key set did try the issuer again, and kept its keys
