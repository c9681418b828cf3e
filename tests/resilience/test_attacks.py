"""The attacks of the security review, repeated against a running ``tokensmith serve``: each refused, the server's
memory bounded. A head that never ends, 200 slow heads, forged X-Forwarded-For, pipelined h2c requests split
across reads, and a user and a client removed from the configuration."""

from __future__ import annotations

import asyncio
from collections.abc import Iterator
from pathlib import Path
from urllib.parse import urlencode

import httpx
import pytest
from tests.resilience.support import CLIENT_CREDENTIALS, EXCHANGER, exchange_form, report, server_data, user_tokens
from tests.server.browser import Browser, basic_auth, hidden_fields, web_authorize_params
from tests.server.configs import SERVICE_CLIENT, USERNAME
from tests.support.serve_process import ServeProcess, serve_process

from tokensmith.server.http.protocol import HEAD_TIMEOUT_SECONDS, MAX_HEAD_BYTES

pytestmark = pytest.mark.resilience

ENDLESS_HEADS = 4
ENDLESS_HEAD_LIMIT_BYTES = 8 * 1024 * 1024  # what each attacker is willing to send
SLOW_HEADS = 200
MAX_GROWTH_MB = 30.0
ADDRESS_LIMIT = 3
TIGHT_LOGIN = {"max-failures-per-user-and-address": 3, "max-failures-per-address": ADDRESS_LIMIT, "max-backoff": "0s"}


@pytest.fixture(scope="module")
def server(tmp_path_factory: pytest.TempPathFactory) -> Iterator[ServeProcess]:
    directory = tmp_path_factory.mktemp("attacks")
    data = server_data(f"sqlite+aiosqlite:///{directory / 'ts.db'}")
    data["login"] = TIGHT_LOGIN
    with serve_process(data, directory) as running:
        yield running


async def endless_head(port: int) -> int:
    """Send a header that never ends; return how many bytes went out before the server closed the connection."""
    reader, writer = await asyncio.open_connection("127.0.0.1", port)
    sent = 0
    chunk = b"a" * 65536
    try:
        writer.write(b"GET /healthz HTTP/1.1\r\nHost: x\r\nX-Big: ")
        while sent < ENDLESS_HEAD_LIMIT_BYTES:
            writer.write(chunk)
            await writer.drain()
            sent += len(chunk)
            if reader.at_eof():
                break
            await asyncio.sleep(0)
    except ConnectionError:
        pass
    finally:
        writer.close()
    return sent


async def test_a_never_ending_head_is_cut_off_with_memory_bounded(server: ServeProcess) -> None:
    before = server.rss_mb()
    sent = await asyncio.gather(*(endless_head(server.port) for _ in range(ENDLESS_HEADS)))
    growth = server.rss_mb() - before
    report("attack_endless_head", connections=ENDLESS_HEADS, most_bytes_sent=max(sent), rss_growth_mb=growth)
    assert max(sent) < ENDLESS_HEAD_LIMIT_BYTES  # every connection was closed long before the attacker gave up
    assert growth < MAX_GROWTH_MB
    async with httpx.AsyncClient() as http:
        assert (await http.get(server.url + "/healthz")).status_code == 200


async def slow_head(port: int, closed_after: list[float]) -> None:
    loop = asyncio.get_running_loop()
    start = loop.time()
    reader, writer = await asyncio.open_connection("127.0.0.1", port)
    try:
        writer.write(b"GET /healthz HTTP/1.1\r\nHost: x\r\n")
        while loop.time() - start < HEAD_TIMEOUT_SECONDS + 10:
            try:
                writer.write(b"X")  # one more byte of a header line, now and then
                await writer.drain()
                if await asyncio.wait_for(reader.read(4096), 1.0) == b"":
                    closed_after.append(loop.time() - start)
                    return
            except TimeoutError:
                continue
            except ConnectionError:
                closed_after.append(loop.time() - start)
                return
    finally:
        writer.close()


async def test_slow_heads_are_closed(server: ServeProcess) -> None:
    before = server.rss_mb()
    closed_after: list[float] = []
    await asyncio.gather(*(slow_head(server.port, closed_after) for _ in range(SLOW_HEADS)))
    growth = server.rss_mb() - before
    report(
        "attack_slow_heads",
        connections=SLOW_HEADS,
        closed=len(closed_after),
        closed_within_s=max(closed_after, default=-1.0),
        head_timeout_s=HEAD_TIMEOUT_SECONDS,
        rss_growth_mb=growth,
    )
    assert len(closed_after) == SLOW_HEADS
    assert max(closed_after) < HEAD_TIMEOUT_SECONDS + 3
    assert growth < MAX_GROWTH_MB


async def test_forged_x_forwarded_for_is_ignored(server: ServeProcess) -> None:
    statuses = []
    async with httpx.AsyncClient(base_url=server.url, timeout=30) as http:
        for n in range(ADDRESS_LIMIT + 2):
            fields = hidden_fields((await http.get("/login")).text)
            response = await http.post(
                "/login",
                data={**fields, "username": f"guess-{n}", "password": "guess"},
                headers={"X-Forwarded-For": f"203.0.113.{n}"},
            )
            statuses.append(response.status_code)
    report("attack_forged_x_forwarded_for", attempts=len(statuses), throttled=statuses.count(429))
    assert statuses[-2:] == [429, 429]  # every forged address counted as the one the connection came from


async def test_pipelined_h2c_requests_split_across_reads_are_answered(server: ServeProcess) -> None:
    h2c = b"Connection: Upgrade, HTTP2-Settings\r\nUpgrade: h2c\r\nHTTP2-Settings: AAEAAEAAAAIAAAAA\r\n"
    body = urlencode(CLIENT_CREDENTIALS).encode()
    request = (
        b"POST /oauth2/token HTTP/1.1\r\nHost: x\r\nContent-Type: application/x-www-form-urlencoded\r\n"
        + h2c
        + b"Content-Length: %d\r\n\r\n" % len(body)
        + body
    )
    pipeline = request * 3
    reader, writer = await asyncio.open_connection("127.0.0.1", server.port)
    try:
        writer.write(pipeline[:40])  # the first head in two reads
        await writer.drain()
        await asyncio.sleep(0.2)
        writer.write(pipeline[40:])
        await writer.drain()
        received = b""
        loop = asyncio.get_running_loop()
        deadline = loop.time() + 15
        while received.count(b"access_token") < 3 and loop.time() < deadline:
            chunk = await asyncio.wait_for(reader.read(65536), deadline - loop.time())
            if not chunk:
                break
            received += chunk
    finally:
        writer.close()
    answered = received.count(b"HTTP/1.1 200")
    report("attack_h2c_pipelined", requests=3, answered_200=answered, max_head_bytes=MAX_HEAD_BYTES)
    assert answered == 3, received[:500]


async def test_a_removed_user_and_client_are_refused_after_the_restart(tmp_path: Path) -> None:
    data = server_data(f"sqlite+aiosqlite:///{tmp_path / 'ts.db'}")
    with serve_process(data, tmp_path, name="before") as before:
        port = before.port
        user = await user_tokens(before.url)
        async with httpx.AsyncClient(base_url=before.url, timeout=15, follow_redirects=False) as http:
            await Browser(http).code_for()
            session_cookies = dict(http.cookies)
            service_token = (await http.post("/oauth2/token", data=CLIENT_CREDENTIALS)).json()["access_token"]
    removed = server_data(data["database-url"])
    removed["users"] = [u for u in removed["users"] if u["username"] != USERNAME]
    removed["clients"] = {
        k: v for k, v in removed["clients"].items() if v["registration"]["client-id"] != SERVICE_CLIENT
    }
    with serve_process(removed, tmp_path, name="after", port=port) as after:
        async with httpx.AsyncClient(base_url=after.url, timeout=15, follow_redirects=False) as http:
            refresh = await http.post(
                "/oauth2/token",
                data={"grant_type": "refresh_token", "refresh_token": user["refresh_token"]},
                headers=basic_auth(),
            )
            exchanged = await http.post("/oauth2/token", data=exchange_form(user["access_token"]), headers=EXCHANGER)
            userinfo = await http.get("/userinfo", headers={"Authorization": "Bearer " + user["access_token"]})
            introspected = await http.post("/oauth2/introspect", data={"token": service_token}, headers=basic_auth())
            service_exchange = await http.post("/oauth2/token", data=exchange_form(service_token), headers=EXCHANGER)
            http.cookies.update(session_cookies)
            authorize = await Browser(http).authorize(web_authorize_params())
        memory = after.rss_mb()
    refused = {
        "refresh": refresh.status_code == 400,
        "exchange_of_user_token": exchanged.status_code == 400,
        "userinfo": userinfo.status_code == 401,
        "introspection_of_client_token": introspected.json().get("active") is False,
        "exchange_of_client_token": service_exchange.status_code == 400,
        "session_asked_to_sign_in_again": authorize.headers.get("location", "").startswith("/login"),
    }
    report("attack_removed_principals", **refused, rss_mb=memory)
    assert all(refused.values()), refused
