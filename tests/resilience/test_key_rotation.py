"""Key rotation under load: ``tokensmith keys rotate`` while clients take tokens and a resource server
(tokensmith.resource.TokenValidator) validates each at once; then the server is restarted so that it signs with
the new key (a running server also picks it up by itself within a minute). No valid token is rejected: tokens of
the old key verify on the retired key the JWK Set keeps, tokens of the new one make the validator refetch once."""

from __future__ import annotations

import asyncio
import os
import sys
from collections import Counter
from pathlib import Path

import httpx
import pytest
from tests.resilience.support import CLIENT_CREDENTIALS, kid_of, report, server_data
from tests.support.serve_process import serve_process

from tokensmith.resource import TokenValidator

pytestmark = pytest.mark.resilience

WORKERS = 4
ROTATE_AT = 3.0
RESTART_AT = 6.0
LOAD_AFTER_RESTART = 4.0


async def test_rotation_under_load_rejects_no_valid_token(tmp_path: Path) -> None:
    with serve_process(server_data(f"sqlite+aiosqlite:///{tmp_path / 'ts.db'}"), tmp_path) as server:
        validator = TokenValidator(issuer=server.url, audience="report-api")
        kids: Counter[str] = Counter()
        rejected: list[str] = []
        unavailable = 0
        done = asyncio.Event()

        async def client() -> None:
            nonlocal unavailable
            async with httpx.AsyncClient(base_url=server.url, timeout=15) as http:
                while not done.is_set():
                    try:
                        response = await http.post("/oauth2/token", data=CLIENT_CREDENTIALS)
                    except httpx.TransportError:  # the restart
                        unavailable += 1
                        await asyncio.sleep(0.1)
                        continue
                    assert response.status_code == 200, response.text
                    token = response.json()["access_token"]
                    try:
                        await validator.validate(token)
                    except Exception as exc:  # any refusal of a token the server just issued is a failure
                        rejected.append(f"{type(exc).__name__}: {exc}")
                    kids[kid_of(token)] += 1

        async def operator() -> None:
            await asyncio.sleep(ROTATE_AT)
            env = {k: v for k, v in os.environ.items() if not k.startswith("TOKENSMITH_")}
            rotate = await asyncio.create_subprocess_exec(
                sys.executable,
                "-m",
                "tokensmith",
                "keys",
                "rotate",
                "--config",
                str(server.config_path),
                env=env,
                stdout=asyncio.subprocess.DEVNULL,
            )
            assert await rotate.wait() == 0
            await asyncio.sleep(RESTART_AT - ROTATE_AT)
            await asyncio.to_thread(server.stop)
            await asyncio.to_thread(server.start)
            await asyncio.sleep(LOAD_AFTER_RESTART)
            done.set()

        try:
            await asyncio.gather(operator(), *(client() for _ in range(WORKERS)))
        finally:
            await validator.aclose()
    report(
        "key_rotation",
        tokens_validated=sum(kids.values()),
        signing_keys_seen=len(kids),
        tokens_per_key=sorted(kids.values()),
        rejected=len(rejected),
        requests_refused_during_restart=unavailable,
    )
    assert not rejected, rejected[:5]
    assert len(kids) == 2  # the old key, then the new one
