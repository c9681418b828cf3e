"""Fixtures of the interop suite: tokensmith instances, the Spring Boot peers per Boot line, node, HTTP.

The article's Spring services run against ``examples/authorization-server.yaml`` itself, served by
``tokensmith serve`` (tests/interop/example_server.py); the other peers against interop/tokensmith/interop.yaml,
which adds the clients they log in with.

Every process binds 127.0.0.1 on a free port and is stopped by the fixture that started it. The Spring jars are
built once per session and Boot line; each group of Spring apps is started once per session and Boot line.
"""

from __future__ import annotations

from collections.abc import AsyncIterator, Iterator
from pathlib import Path

import httpx
import pytest
from tests.interop.example_server import serving_example
from tests.interop.node_peer import install as install_node_peer
from tests.interop.spring_apps import (
    BOOT_LINES,
    TIMINGS,
    BootLine,
    SpringApp,
    authorization_server_args,
    build,
    message_service_args,
    running_on_free_ports,
    user_service_args,
)
from tests.interop.tokensmith_services import message_service_app, serving
from tests.interop.tooling import INTEROP_DIR, free_port, require_tools
from tests.support.server import running_server

from tokensmith.config.loader import load_config
from tokensmith.config.server import ServerConfig

INTEROP_CONFIG = INTEROP_DIR / "tokensmith" / "interop.yaml"
# interop.yaml keeps tokensmith's default `typ` at+jwt, which openid-client and Authlib check; for the Spring
# resource servers of the mixed fleets it gets the example's setting, as environment overrides.
SPRING_RESOURCE_SERVER_TYP = {
    "TOKENSMITH_TOKENS__ACCESS_TOKEN_TYP_BY_AUDIENCE__USER_SERVICE": "JWT",
    "TOKENSMITH_TOKENS__ACCESS_TOKEN_TYP_BY_AUDIENCE__MESSAGE_SERVICE": "JWT",
}


@pytest.fixture(scope="session")
def interop_server_config() -> ServerConfig:
    return load_config(INTEROP_CONFIG, environ={})


@pytest.fixture(scope="session")
async def tokensmith_rfc(interop_server_config: ServerConfig) -> AsyncIterator[str]:
    """tokensmith with its defaults: every access token has `typ` at+jwt (RFC 9068)."""
    async with running_server(interop_server_config) as issuer:
        yield issuer


@pytest.fixture(scope="session")
def tokensmith_example(tmp_path_factory: pytest.TempPathFactory) -> Iterator[str]:
    """``tokensmith serve --config examples/authorization-server.yaml`` on a free port; yields the issuer."""
    with serving_example(tmp_path_factory.mktemp("tokensmith-example")) as server:
        yield server.issuer


@pytest.fixture(scope="session")
async def tokensmith_for_spring() -> AsyncIterator[str]:
    """interop.yaml with `typ` JWT for user-service and message-service (delegation and service clients)."""
    config = load_config(INTEROP_CONFIG, environ=SPRING_RESOURCE_SERVER_TYP)
    assert config.tokens.access_token_typ_by_audience == {"user-service": "JWT", "message-service": "JWT"}
    async with running_server(config) as issuer:
        yield issuer


@pytest.fixture
async def http() -> AsyncIterator[httpx.AsyncClient]:
    async with httpx.AsyncClient(timeout=30) as client:
        yield client


# ---- Spring Boot -------------------------------------------------------------------------------------------


@pytest.fixture(scope="session")
def java() -> str:
    return require_tools("java", "mvn")["java"]


@pytest.fixture(scope="session")
def spring_logs(tmp_path_factory: pytest.TempPathFactory) -> Path:
    return tmp_path_factory.mktemp("spring-logs")


@pytest.fixture(scope="session", params=BOOT_LINES, ids=[line.name for line in BOOT_LINES])
def boot_line(request: pytest.FixtureRequest, java: str) -> BootLine:
    """Each Spring Boot line; its jars are built the first time it is needed in the session."""
    line: BootLine = request.param
    if line.name not in TIMINGS.builds:
        build(line, require_tools("mvn")["mvn"])
    return line


@pytest.fixture(scope="session")
def spring_authorization_server(boot_line: BootLine, java: str, spring_logs: Path) -> Iterator[SpringApp]:
    """The article's authorization server (Spring Authorization Server) on this Boot line."""

    def make() -> list[SpringApp]:
        port = free_port()
        args = authorization_server_args(f"http://127.0.0.1:{port}")
        return [SpringApp(boot_line, "authorization-server", java, spring_logs, args, port=port)]

    with running_on_free_ports(make) as (app,):
        yield app


def _resource_servers(line: BootLine, java: str, logs: Path, issuer: str) -> list[SpringApp]:
    message_service = SpringApp(line, "message-service", java, logs, message_service_args(issuer))
    user_service = SpringApp(
        line, "user-service", java, logs, user_service_args(issuer, f"{message_service.url}/message")
    )
    return [user_service, message_service]


@pytest.fixture(scope="session")
def spring_services_on_spring_as(
    boot_line: BootLine, java: str, spring_logs: Path, spring_authorization_server: SpringApp
) -> Iterator[tuple[SpringApp, SpringApp]]:
    """(user-service, message-service) trusting the Spring authorization server: the article, all Spring."""
    with running_on_free_ports(
        lambda: _resource_servers(boot_line, java, spring_logs, spring_authorization_server.url)
    ) as (user_service, message_service):
        yield user_service, message_service


@pytest.fixture(scope="session")
def spring_services_on_example(
    boot_line: BootLine, java: str, spring_logs: Path, tokensmith_example: str
) -> Iterator[tuple[SpringApp, SpringApp]]:
    """(user-service, message-service) trusting tokensmith serving examples/authorization-server.yaml."""
    with running_on_free_ports(lambda: _resource_servers(boot_line, java, spring_logs, tokensmith_example)) as (
        user_service,
        message_service,
    ):
        yield user_service, message_service


@pytest.fixture(scope="session")
def spring_message_service_on_tokensmith(
    boot_line: BootLine, java: str, spring_logs: Path, tokensmith_for_spring: str
) -> Iterator[SpringApp]:
    """A Spring message-service trusting the interop tokensmith with `typ` JWT for its audience."""
    with running_on_free_ports(
        lambda: [
            SpringApp(boot_line, "message-service", java, spring_logs, message_service_args(tokensmith_for_spring))
        ]
    ) as (app,):
        yield app


@pytest.fixture(scope="session")
def spring_message_service_on_rfc_tokensmith(
    boot_line: BootLine, java: str, spring_logs: Path, tokensmith_rfc: str
) -> Iterator[SpringApp]:
    """A Spring message-service trusting tokensmith with its RFC 9068 defaults (typ at+jwt for everyone)."""
    with running_on_free_ports(
        lambda: [SpringApp(boot_line, "message-service", java, spring_logs, message_service_args(tokensmith_rfc))]
    ) as (app,):
        yield app


@pytest.fixture(scope="session")
async def tokensmith_message_service(tokensmith_example: str) -> AsyncIterator[str]:
    """tokensmith's message-service (tokensmith.demo), trusting tokensmith serving the example file."""
    async with serving(message_service_app(tokensmith_example)) as url:
        yield url


@pytest.fixture(scope="session")
def spring_user_service_to_tokensmith(
    boot_line: BootLine, java: str, spring_logs: Path, tokensmith_example: str, tokensmith_message_service: str
) -> Iterator[SpringApp]:
    """A Spring user-service that exchanges at tokensmith (the example file) and calls tokensmith's message-service."""
    args = user_service_args(tokensmith_example, f"{tokensmith_message_service}/message")
    with running_on_free_ports(lambda: [SpringApp(boot_line, "user-service", java, spring_logs, args)]) as (app,):
        yield app


# ---- node --------------------------------------------------------------------------------------------------


@pytest.fixture(scope="session")
def node() -> str:
    tools = require_tools("node", "npm")
    install_node_peer(tools["npm"])
    return tools["node"]


def pytest_terminal_summary(terminalreporter: pytest.TerminalReporter) -> None:
    summary = TIMINGS.summary()
    if summary:
        terminalreporter.write_line(f"interop: {summary}")
