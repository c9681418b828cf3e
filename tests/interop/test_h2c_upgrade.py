"""Requests offering ``Upgrade: h2c`` (Java's HttpClient, so Spring's RestClient) keep their body.

uvicorn's httptools protocol loses such a body (Kludex/uvicorn#2722); tokensmith serves with
:mod:`tokensmith.server.http.protocol`, which reads it (tests/server/test_http_protocol.py covers split heads and
pipelines over raw sockets). No external tool is needed, so these run everywhere.
"""

from __future__ import annotations

import asyncio
import json
import os
import sys
from pathlib import Path

import httpx
from tests.interop.tooling import INTEROP_DIR, free_port
from tests.support.server import running_server

from tokensmith.config.server import ServerConfig

JAVA_STYLE_POST = (
    b"POST /oauth2/token HTTP/1.1\r\n"
    b"Connection: Upgrade, HTTP2-Settings\r\n"
    b"Content-Length: %d\r\n"
    b"Host: 127.0.0.1\r\n"
    b"HTTP2-Settings: AAEAAEAAAAIAAAABAAMAAABkAAQBAAAAAAUAAEAA\r\n"
    b"Upgrade: h2c\r\n"
    b"Authorization: Basic dXNlci1zZXJ2aWNlOnVzZXItc2VjcmV0\r\n"
    b"Content-Type: application/x-www-form-urlencoded\r\n"
    b"\r\n"
)
BODY = b"grant_type=client_credentials&scope=user.read"


async def post_like_java(host: str, port: int) -> tuple[bytes, dict[str, object]]:
    """Send the token request the way Java's HttpClient does; the response head and JSON body."""
    reader, writer = await asyncio.open_connection(host, port)
    try:
        writer.write(JAVA_STYLE_POST % len(BODY) + BODY)
        await writer.drain()
        head = await reader.readuntil(b"\r\n\r\n")
        length = next(
            int(line.split(b":", 1)[1]) for line in head.split(b"\r\n") if line.lower().startswith(b"content-length:")
        )
        body: dict[str, object] = json.loads(await reader.readexactly(length))
    finally:
        writer.close()
        await writer.wait_closed()
    return head, body


async def test_a_token_request_offering_h2c_is_answered(interop_server_config: ServerConfig) -> None:
    async with running_server(interop_server_config) as issuer:
        host, port = issuer.removeprefix("http://").split(":")
        head, body = await post_like_java(host, int(port))
    assert head.startswith(b"HTTP/1.1 200"), (head, body)
    assert body["token_type"] == "Bearer", body


async def test_tokensmith_serve_answers_it_too(tmp_path: Path) -> None:
    """The same through the `tokensmith serve` command users run."""
    port = free_port()
    env = {
        **os.environ,
        "TOKENSMITH_ISSUER": f"http://127.0.0.1:{port}",
        "TOKENSMITH_DATABASE_URL": f"sqlite+aiosqlite:///{tmp_path / 'tokensmith.db'}",
    }
    config = INTEROP_DIR / "tokensmith" / "interop.yaml"
    log_path = tmp_path / "serve.log"
    with log_path.open("wb") as log:
        server = await asyncio.create_subprocess_exec(
            *[sys.executable, "-m", "tokensmith", "serve", "--config", str(config)],
            *["--port", str(port), "--log-level", "warning"],
            env=env,
            stdout=log,
            stderr=log,
        )
    try:
        async with httpx.AsyncClient() as http:
            for _ in range(150):
                assert server.returncode is None, log_path.read_text()
                try:
                    if (await http.get(f"http://127.0.0.1:{port}/.well-known/openid-configuration")).status_code == 200:
                        break
                except httpx.TransportError:
                    await asyncio.sleep(0.1)
        head, body = await post_like_java("127.0.0.1", port)
    finally:
        server.terminate()
        await asyncio.wait_for(server.wait(), timeout=15)
    assert head.startswith(b"HTTP/1.1 200"), (head, body, log_path.read_text())
