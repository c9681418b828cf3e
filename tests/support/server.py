"""Run the authorization server for a test: ``async with running_server(config) as base_url: ...``.

The server is ``create_app(config)`` under uvicorn in a background thread with its own event loop, bound to
127.0.0.1 on a free port. The issuer becomes ``http://127.0.0.1:<port>`` (unless the config already names such a
URL with a port, which is then used), so discovery documents and token ``iss`` claims match the URL tests call.
A config still on the default database URL gets a fresh SQLite file in a temporary directory.
"""

from __future__ import annotations

import asyncio
import contextlib
import socket
import tempfile
import threading
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from pathlib import Path
from typing import Any
from urllib.parse import urlsplit

import uvicorn

from tokensmith.config.server import ServerConfig
from tokensmith.server.app import create_app
from tokensmith.server.serving import uvicorn_options
from tokensmith.store import open_store
from tokensmith.store.records import AuditEvent

_DEFAULT_DATABASE_URL = ServerConfig().database_url
_STARTUP_TIMEOUT = 30.0


def free_port() -> int:
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as sock:
        sock.bind(("127.0.0.1", 0))
        port: int = sock.getsockname()[1]
        return port


def _port_of(issuer: str) -> int | None:
    parts = urlsplit(issuer)
    if parts.hostname == "127.0.0.1" and parts.port:
        return parts.port
    return None


def with_issuer(config: ServerConfig, port: int, **updates: Any) -> ServerConfig:
    """A copy of ``config`` whose issuer is ``http://127.0.0.1:<port>``."""
    return config.model_copy(update={"issuer": f"http://127.0.0.1:{port}", "port": port, **updates})


@asynccontextmanager
async def running_server(config: ServerConfig) -> AsyncIterator[str]:
    """Start the server, yield its base URL (equal to the issuer), stop it on exit."""
    port = _port_of(config.issuer) or free_port()
    with tempfile.TemporaryDirectory(prefix="tokensmith-test-") as scratch:
        updates: dict[str, Any] = {}
        if config.database_url == _DEFAULT_DATABASE_URL:
            updates["database_url"] = f"sqlite+aiosqlite:///{Path(scratch) / 'tokensmith.db'}"
        config = with_issuer(config, port, **updates)
        server = uvicorn.Server(
            uvicorn.Config(
                create_app(config),
                host="127.0.0.1",
                port=port,
                **uvicorn_options(
                    forwarded_allow_ips=config.forwarded_allow_ips, log_level="warning", access_log=False
                ),
            )
        )
        thread = threading.Thread(target=_run, args=(server,), name=f"tokensmith-server-{port}", daemon=True)
        thread.start()
        try:
            await _wait_started(server, thread)
            yield config.issuer
        finally:
            server.should_exit = True
            await asyncio.to_thread(thread.join, 15)


def _run(server: uvicorn.Server) -> None:
    # uvicorn ends a failed start-up with sys.exit(3); in a thread that is just the end of the thread.
    with contextlib.suppress(SystemExit):
        server.run()


async def _wait_started(server: uvicorn.Server, thread: threading.Thread) -> None:
    loop = asyncio.get_running_loop()
    deadline = loop.time() + _STARTUP_TIMEOUT
    while not server.started:
        if not thread.is_alive():
            raise RuntimeError("the authorization server failed to start (see the log above)")
        if loop.time() > deadline:
            raise RuntimeError(f"the authorization server did not start within {_STARTUP_TIMEOUT:.0f} s")
        await asyncio.sleep(0.02)


async def newest_audit_events(database_url: str, count: int) -> list[AuditEvent]:
    """The newest ``count`` audit events of a running server's database, newest first (read at once: each was
    committed before its response went out)."""
    store = open_store(database_url)
    try:
        return list(await store.list_audit_events(limit=count))
    finally:
        await store.close()
