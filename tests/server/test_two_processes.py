"""Two server processes (``tokensmith serve``) on one database never both accept the same code, and count failed
logins together.

Run against SQLite (one file) and PostgreSQL: single use and the login limits are enforced by the database, not by
process memory.
"""

from __future__ import annotations

import asyncio
import os
import subprocess
import sys
from collections.abc import AsyncIterator, Iterator
from contextlib import asynccontextmanager, contextmanager
from pathlib import Path

import httpx
import pytest
import yaml
from tests.server.browser import Browser, basic_auth, hidden_fields
from tests.server.configs import WEB_REDIRECT, config_data
from tests.server.protocol import VERIFIER
from tests.support.server import free_port

from tokensmith.server.key_encryption import new_key_text

SERVE = [sys.executable, "-m", "tokensmith", "serve"]


def log_text(path: Path) -> str:
    return path.read_text(errors="replace")


@contextmanager
def serve(config_path: Path, port: int, log_path: Path) -> Iterator[subprocess.Popen[bytes]]:
    env = {k: v for k, v in os.environ.items() if not k.startswith("TOKENSMITH_")}
    with log_path.open("wb") as log:
        process = subprocess.Popen(
            [*SERVE, "--config", str(config_path), "--port", str(port), "--log-level", "warning"],
            stdout=log,
            stderr=subprocess.STDOUT,
            env=env,
        )
        try:
            yield process
        finally:
            process.terminate()
            try:
                process.wait(timeout=15)
            except subprocess.TimeoutExpired:
                process.kill()
                process.wait()


async def wait_ready(url: str, process: subprocess.Popen[bytes], log_path: Path) -> None:
    async with httpx.AsyncClient(timeout=2) as http:
        for _ in range(300):
            if process.poll() is not None:
                pytest.fail(f"server exited with {process.returncode}: {await asyncio.to_thread(log_text, log_path)}")
            try:
                if (await http.get(url + "/health")).status_code == 200:
                    return
            except httpx.TransportError:
                pass
            await asyncio.sleep(0.1)
    pytest.fail(f"server at {url} did not start: {await asyncio.to_thread(log_text, log_path)}")


@asynccontextmanager
async def two_servers(tmp_path: Path, database_url: str) -> AsyncIterator[tuple[str, str]]:
    port_a, port_b = free_port(), free_port()
    issuer = f"http://127.0.0.1:{port_a}"  # replicas share one issuer; B is reached on its own port
    config_path = tmp_path / "server.yaml"
    # Both replicas seal and open the signing keys with the same key-encryption key (needed on PostgreSQL).
    settings = config_data(issuer=issuer, **{"database-url": database_url})
    settings["keys"] = {**settings.get("keys", {}), "encryption-key": new_key_text()}
    config_path.write_text(yaml.safe_dump(settings))
    url_a, url_b = issuer, f"http://127.0.0.1:{port_b}"
    log_a, log_b = tmp_path / "a.log", tmp_path / "b.log"
    with serve(config_path, port_a, log_a) as process_a:
        # A first creates the schema and the keys; B then starts on the same database.
        await wait_ready(url_a, process_a, log_a)
        with serve(config_path, port_b, log_b) as process_b:
            await wait_ready(url_b, process_b, log_b)
            yield url_a, url_b


def redeem_form(code: str) -> dict[str, str]:
    return {"grant_type": "authorization_code", "code": code, "redirect_uri": WEB_REDIRECT, "code_verifier": VERIFIER}


async def check_code_replay_across_processes(url_a: str, url_b: str) -> None:
    async with (
        httpx.AsyncClient(base_url=url_a, timeout=10) as http_a,
        httpx.AsyncClient(base_url=url_b, timeout=10) as http_b,
    ):
        browser = Browser(http_a)
        # Sequential: redeemed at A, replayed at B.
        code = (await browser.code_for())["code"]
        first = await http_a.post("/oauth2/token", data=redeem_form(code), headers=basic_auth())
        assert first.status_code == 200, first.text
        replay = await http_b.post("/oauth2/token", data=redeem_form(code), headers=basic_auth())
        assert replay.status_code == 400
        assert replay.json()["error"] == "invalid_grant"
        # The replay at B revoked what A issued: A's introspection says so.
        introspected = await http_a.post(
            "/oauth2/introspect", data={"token": first.json()["access_token"]}, headers=basic_auth()
        )
        assert introspected.json() == {"active": False}

        # Concurrent: the same code sent to both at once; exactly one wins.
        for _ in range(3):
            code = (await browser.code_for())["code"]
            answers = await asyncio.gather(
                http_a.post("/oauth2/token", data=redeem_form(code), headers=basic_auth()),
                http_b.post("/oauth2/token", data=redeem_form(code), headers=basic_auth()),
            )
            assert sorted(r.status_code for r in answers) == [200, 400], [r.text for r in answers]

        # Refresh tokens too: rotated at B, the old one reused at A is refused.
        code = (await browser.code_for())["code"]
        tokens = (await http_a.post("/oauth2/token", data=redeem_form(code), headers=basic_auth())).json()
        refresh = {"grant_type": "refresh_token", "refresh_token": tokens["refresh_token"]}
        assert (await http_b.post("/oauth2/token", data=refresh, headers=basic_auth())).status_code == 200
        reused = await http_a.post("/oauth2/token", data=refresh, headers=basic_auth())
        assert reused.json()["error"] == "invalid_grant"


async def check_failed_logins_across_processes(url_a: str, url_b: str) -> None:
    # The default limit is 5 failures per username: 3 at A and 2 at B use them up for both.
    async with (
        httpx.AsyncClient(base_url=url_a, timeout=10) as http_a,
        httpx.AsyncClient(base_url=url_b, timeout=10) as http_b,
    ):

        async def guess(http: httpx.AsyncClient) -> int:
            fields = hidden_fields((await http.get("/login")).text)
            data = {**fields, "username": "guessed-user", "password": "wrong"}
            return (await http.post("/login", data=data)).status_code

        statuses = [await guess(http) for http in (http_a, http_a, http_a, http_b, http_b)]
        assert statuses == [401] * 5
        assert await guess(http_a) == 429
        assert await guess(http_b) == 429


async def test_code_replay_and_failed_logins_across_two_processes_on_sqlite(tmp_path: Path) -> None:
    async with two_servers(tmp_path, f"sqlite+aiosqlite:///{tmp_path / 'shared.db'}") as (url_a, url_b):
        await check_code_replay_across_processes(url_a, url_b)
        await check_failed_logins_across_processes(url_a, url_b)


@pytest.mark.postgres
async def test_code_replay_and_failed_logins_across_two_processes_on_postgresql(
    tmp_path: Path, postgres_database_url: str
) -> None:
    async with two_servers(tmp_path, postgres_database_url) as (url_a, url_b):
        await check_code_replay_across_processes(url_a, url_b)
        await check_failed_logins_across_processes(url_a, url_b)
