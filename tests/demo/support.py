"""Helpers for the demo tests: extra clients, tokens for bad-input cases, the flow's first steps."""

from __future__ import annotations

from datetime import timedelta
from typing import Any

import httpx

from tokensmith.config.server import ServerConfig
from tokensmith.demo.check import FlowCheck
from tokensmith.demo.runner import DemoSystem
from tokensmith.server.core.context import ServerContext

# A client whose tokens are for message-service but without message.read (the 403 case).
SCOPE_TESTER = ("scope-tester", "scope-secret")
TEST_CLIENTS: dict[str, Any] = {
    "scope-tester": {
        "registration": {
            "client-id": SCOPE_TESTER[0],
            "client-secret": "{noop}" + SCOPE_TESTER[1],
            "authorization-grant-types": ["client_credentials"],
            "scopes": ["message.write"],
        },
        "audiences": ["message-service"],
    }
}
USER_SERVICE_CLIENT = ("user-service", "user-secret")  # as in the shipped authorization-server.yaml


def with_test_clients(config: ServerConfig) -> ServerConfig:
    data = config.model_dump(by_alias=True)
    data["clients"] = {**data["clients"], **TEST_CLIENTS}
    return ServerConfig.model_validate(data)


async def client_credentials_token(system: DemoSystem, client: tuple[str, str]) -> str:
    async with httpx.AsyncClient(trust_env=False) as http:
        response = await http.post(
            system.topology.issuer + "/oauth2/token", data={"grant_type": "client_credentials"}, auth=client
        )
    assert response.status_code == 200, response.text
    token: str = response.json()["access_token"]
    return token


def server_context(system: DemoSystem) -> ServerContext:
    """The running authorization server's context (to sign tokens no client could obtain, e.g. expired ones)."""
    ctx: ServerContext = system.apps["authorization server"].state.runtime.ctx  # type: ignore[attr-defined]
    return ctx


async def expired_token(system: DemoSystem, audience: str, scope: tuple[str, ...]) -> str:
    """A token signed by the authorization server's key that expired two minutes ago (beyond any leeway)."""
    issued = await server_context(system).tokens.issue_access_token(
        subject="baeldung",
        client_id="messaging-client",
        audience=[audience],
        scope=scope,
        ttl=timedelta(seconds=-120),
    )
    return issued.token


async def logged_in_check(system: DemoSystem) -> FlowCheck:
    """A FlowCheck that has logged in (its cookie jar holds the client app's session)."""
    check = FlowCheck(system.topology)
    for _, step in check.steps()[:3]:
        await step()
    return check
