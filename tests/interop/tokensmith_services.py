"""tokensmith's own user-service and message-service (tokensmith.demo), configured for any authorization server.

They are configured with the article's Spring-shaped settings, pointed at the issuer under test, and served by
uvicorn on the test's event loop on free 127.0.0.1 ports.
"""

from __future__ import annotations

import asyncio
import contextlib
import socket
from collections.abc import AsyncIterator, Generator

import uvicorn
from starlette.types import ASGIApp
from tests.support.article import article_client_properties

from tokensmith.demo.message_service import create_message_service
from tokensmith.demo.settings import MessageServiceSettings, UserServiceSettings
from tokensmith.demo.user_service import create_user_service
from tokensmith.server.http.protocol import HTTP_PROTOCOL

START_TIMEOUT_S = 15.0


class _Server(uvicorn.Server):
    """Leaves signal handling alone: pytest owns Ctrl-C."""

    @contextlib.contextmanager
    def capture_signals(self) -> Generator[None, None, None]:
        yield


class Listener:
    """A socket bound now, so the URL is known before the app that serves it is built."""

    def __init__(self) -> None:
        self.socket = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
        self.socket.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        self.socket.bind(("127.0.0.1", 0))
        self.url = f"http://127.0.0.1:{self.socket.getsockname()[1]}"


@contextlib.asynccontextmanager
async def serving(app: ASGIApp, listener: Listener | None = None) -> AsyncIterator[str]:
    """Serve ``app`` until the block exits; yields its base URL."""
    listener = listener or Listener()
    config = uvicorn.Config(app, lifespan="on", log_level="warning", access_log=False, http=HTTP_PROTOCOL)
    server = _Server(config)
    task = asyncio.create_task(server.serve(sockets=[listener.socket]))
    try:
        async with asyncio.timeout(START_TIMEOUT_S):
            while not server.started:
                if task.done():
                    task.result()
                    raise RuntimeError(f"{app!r} stopped while starting")
                await asyncio.sleep(0.02)
        yield listener.url
    finally:
        server.should_exit = True
        await asyncio.wait_for(task, timeout=15)
        listener.socket.close()


def message_service_app(issuer: str) -> ASGIApp:
    """The article's message-service: audience message-service, scope message.read."""
    settings = MessageServiceSettings.model_validate(
        {
            "server": {"port": 8082},
            "jwt": {"issuer-uri": issuer, "audiences": "message-service"},
            "required-scope": "message.read",
        }
    )
    return create_message_service(settings)


def user_service_app(issuer: str, message_service_url: str) -> ASGIApp:
    """The article's user-service: audience user-service, exchanging through registration my-message-service."""
    settings = UserServiceSettings.model_validate(
        {
            "server": {"port": 8081},
            "jwt": {"issuer-uri": issuer, "audiences": "user-service"},
            "client": article_client_properties(
                issuer,
                {
                    # Its own identity: the actor token of ?mode=delegation.
                    "user-service-actor": {
                        "provider": "my-auth-server",
                        "client-id": "user-service",
                        "client-secret": "user-secret",
                        "authorization-grant-type": "client_credentials",
                        "client-authentication-method": ["client_secret_basic"],
                    },
                },
            ),
            "target-resource-server-url": message_service_url,
        }
    )
    return create_user_service(settings)
