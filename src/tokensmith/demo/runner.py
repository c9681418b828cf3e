"""Run the four services of the article in one process: four uvicorn servers on one event loop.

Every socket is bound before any server starts, so a taken port fails fast with one line naming it, and ports
given as 0 become free ports whose numbers flow into the issuer URL and the redirect URIs (the tests use that).
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import socket
from collections.abc import Callable, Generator, Mapping
from dataclasses import dataclass
from types import TracebackType

import uvicorn
from starlette.types import ASGIApp

from tokensmith.config.server import ServerConfig
from tokensmith.demo.client_app import create_client_app
from tokensmith.demo.message_service import create_message_service
from tokensmith.demo.settings import (
    load_client_app_settings,
    load_message_service_settings,
    load_server_config,
    load_user_service_settings,
)
from tokensmith.demo.topology import Topology, bind_all
from tokensmith.demo.user_service import create_user_service
from tokensmith.server.app import create_app
from tokensmith.server.serving import uvicorn_options

STARTUP_TIMEOUT_SECONDS = 30.0


class StartupError(Exception):
    """A service did not come up (its own log line says why)."""


class _StartupFailures(logging.Filter):
    """uvicorn logs a failed lifespan start-up as a whole traceback; keep its last line for a one-line error."""

    def __init__(self) -> None:
        super().__init__()
        self.messages: list[str] = []

    def filter(self, record: logging.LogRecord) -> bool:
        message = record.getMessage()
        if message.startswith("Traceback (most recent call last)"):
            lines = [line for line in message.splitlines() if line.strip()]
            self.messages.append(lines[-1].strip())
            return False
        return message != "Application startup failed. Exiting."


async def _serve(server: uvicorn.Server, sock: socket.socket) -> None:
    try:
        await server.serve(sockets=[sock])
    except SystemExit:
        # uvicorn exits the process when its app fails to start; here the runner reports it and stops the others.
        return


class _EmbeddedServer(uvicorn.Server):
    """A uvicorn server that leaves signal handling to the runner (four servers share one Ctrl-C)."""

    @contextlib.contextmanager
    def capture_signals(self) -> Generator[None, None, None]:
        yield


@dataclass(frozen=True, slots=True)
class DemoCredentials:
    username: str = "baeldung"
    password: str = "password"


ServerConfigHook = Callable[[ServerConfig], ServerConfig]


class DemoSystem:
    """The authorization server, client app, user-service and message-service, started and stopped together.

    ``async with DemoSystem(Topology(...)) as system:`` binds, starts, and on exit stops all four.
    ``adjust_server_config`` lets a caller (the tests) add clients to the shipped configuration. ``dpop``: the DPoP
    variant, where the client app, user-service and message-service all work with DPoP-bound tokens (RFC 9449).
    """

    def __init__(
        self,
        topology: Topology,
        *,
        database_url: str | None = None,
        adjust_server_config: ServerConfigHook | None = None,
        log_level: str = "warning",
        dpop: bool = False,
    ) -> None:
        self.requested = topology
        self.topology = topology
        self.dpop = dpop
        self._database_url = database_url
        self._adjust = adjust_server_config
        self._log_level = log_level
        self.server_config: ServerConfig | None = None
        self.apps: dict[str, ASGIApp] = {}
        self._servers: dict[str, _EmbeddedServer] = {}
        self._tasks: dict[str, asyncio.Task[None]] = {}
        self._failures = _StartupFailures()

    def _build_apps(self, topology: Topology) -> dict[str, ASGIApp]:
        config = load_server_config(topology, self._database_url, dpop=self.dpop)
        if self._adjust is not None:
            config = self._adjust(config)
        self.server_config = config
        return {
            "authorization server": create_app(config),
            "client app": create_client_app(load_client_app_settings(topology), dpop=self.dpop),
            "user-service": create_user_service(load_user_service_settings(topology), dpop=self.dpop),
            "message-service": create_message_service(load_message_service_settings(topology), dpop=self.dpop),
        }

    async def start(self) -> None:
        self.topology, sockets = bind_all(self.requested)
        try:
            self.apps = self._build_apps(self.topology)
        except BaseException:
            _close(sockets)
            raise
        configs = {
            # As `tokensmith serve`: the h2c fix (Spring's clients offer h2c), no proxy headers trusted.
            name: uvicorn.Config(app, **uvicorn_options(log_level=self._log_level, access_log=False))
            for name, app in self.apps.items()
        }
        # After the Configs: creating one (re)configures uvicorn's loggers.
        logging.getLogger("uvicorn.error").addFilter(self._failures)
        for name, config in configs.items():
            server = _EmbeddedServer(config)
            self._servers[name] = server
            self._tasks[name] = asyncio.create_task(_serve(server, sockets[name]), name=f"demo {name}")
        try:
            await self._wait_started()
        except BaseException:
            await self.stop()
            _close(sockets)
            raise

    async def _wait_started(self) -> None:
        loop = asyncio.get_running_loop()
        deadline = loop.time() + STARTUP_TIMEOUT_SECONDS
        while not all(server.started for server in self._servers.values()):
            for name, task in self._tasks.items():
                if task.done():
                    error = task.exception()
                    reasons = [str(error)] if error is not None else self._failures.messages
                    detail = f": {reasons[-1]}" if reasons else ""
                    raise StartupError(f"the {name} did not start{detail}")
            if loop.time() > deadline:
                raise StartupError(f"the services did not start within {STARTUP_TIMEOUT_SECONDS:.0f} s")
            await asyncio.sleep(0.02)

    async def wait(self) -> None:
        """Until any server stops by itself (normally never: Ctrl-C calls :meth:`stop`)."""
        if self._tasks:
            await asyncio.wait(self._tasks.values(), return_when=asyncio.FIRST_COMPLETED)

    async def stop_service(self, name: str) -> None:
        """Stop one service and leave the others running (how the tests take the authorization server down)."""
        server, task = self._servers.pop(name), self._tasks.pop(name)
        server.should_exit = True
        await asyncio.gather(task, return_exceptions=True)

    async def stop(self) -> None:
        # Stop in reverse start order: callers first, the authorization server last.
        for server in reversed(self._servers.values()):
            server.should_exit = True
        if self._tasks:
            await asyncio.gather(*self._tasks.values(), return_exceptions=True)
        self._servers.clear()
        self._tasks.clear()
        logging.getLogger("uvicorn.error").removeFilter(self._failures)

    async def __aenter__(self) -> DemoSystem:
        await self.start()
        return self

    async def __aexit__(
        self, exc_type: type[BaseException] | None, exc: BaseException | None, tb: TracebackType | None
    ) -> None:
        await self.stop()

    def urls(self) -> Mapping[str, str]:
        t = self.topology
        return {
            "authorization server": t.issuer,
            "client app": t.client_url,
            "user-service": t.user_service_url,
            "message-service": t.message_service_url,
        }


def _close(sockets: Mapping[str, socket.socket]) -> None:
    for sock in sockets.values():
        sock.close()


def banner(system: DemoSystem, credentials: DemoCredentials = DemoCredentials()) -> str:
    urls = system.urls()
    variant = ["DPoP variant: every token is bound to its holder's key (RFC 9449)"] if system.dpop else []
    return "\n".join(
        [
            *variant,
            f"authorization server  {urls['authorization server']}   (discovery: /.well-known/openid-configuration)",
            f"client app            {urls['client app']}   log in as {credentials.username} / {credentials.password}",
            f"user-service          {urls['user-service']}   GET /user/message",
            f"message-service       {urls['message-service']}   GET /message",
            f"(listening on {system.topology.host}; Ctrl-C stops all four)",
        ]
    )
