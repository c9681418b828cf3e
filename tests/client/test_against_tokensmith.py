"""Both libraries against the real tokensmith server over HTTP (not the fake issuer): what user-service does."""

from __future__ import annotations

from collections.abc import AsyncIterator

import pytest
from tests.support.article import article_client_properties
from tests.support.server import running_server

from tokensmith.client import TokenExchanger, TokenRequestError, load_client_properties
from tokensmith.config.server import ServerConfig
from tokensmith.resource import InvalidToken, TokenValidator

SERVER = {
    "clients": {
        "front-end": {
            "registration": {
                "client-id": "front-end",
                "client-secret": "{noop}front",
                "client-authentication-methods": ["client_secret_basic"],
                "authorization-grant-types": ["client_credentials"],
                "scopes": ["user.read"],
            },
            "audiences": ["user-service"],
        },
        "message-service": {
            "registration": {
                "client-id": "message-service",
                "client-secret": "{noop}token",
                "client-authentication-methods": ["client_secret_basic"],
                "authorization-grant-types": ["urn:ietf:params:oauth:grant-type:token-exchange"],
                "scopes": ["openid", "message.read"],
            }
        },
    }
}


def client_properties(issuer: str) -> dict[str, object]:
    """The article's user-service YAML (plus a client-credentials registration), pointed at the test server."""
    front_end = {
        "provider": "my-auth-server",
        "client-id": "front-end",
        "client-secret": "front",
        "authorization-grant-type": "client_credentials",
        "scope": "user.read",
    }
    return article_client_properties(issuer, {"front-end": front_end})


@pytest.fixture(scope="module")
async def issuer() -> AsyncIterator[str]:
    async with running_server(ServerConfig.model_validate(SERVER)) as url:
        yield url


async def test_client_credentials_then_validation_then_exchange(issuer: str) -> None:
    properties = load_client_properties(client_properties(issuer))
    async with TokenExchanger(properties) as exchanger:
        incoming = await exchanger.client_credentials("front-end")
        user_service = TokenValidator(issuer=issuer, audience="user-service", algorithms=["ES256", "RS256"])
        principal = await user_service.validate(incoming.access_token)
        assert principal.client_id == "front-end"
        assert "user.read" in principal.scopes

        exchanged = await exchanger.exchange(principal.token, registration="my-message-service")
        assert await exchanger.exchange(principal.token, registration="my-message-service") is exchanged

        message_service = TokenValidator(issuer=issuer, audience="message-service", algorithms=["ES256", "RS256"])
        downstream = await message_service.validate(exchanged.access_token)
        assert downstream.subject == principal.subject
        assert "message.read" in downstream.scopes
        with pytest.raises(InvalidToken, match="audience"):
            await message_service.validate(incoming.access_token)
        await user_service.aclose()
        await message_service.aclose()


async def test_a_refused_exchange_carries_the_servers_error(issuer: str) -> None:
    async with TokenExchanger(load_client_properties(client_properties(issuer))) as exchanger:
        with pytest.raises(TokenRequestError) as caught:
            await exchanger.exchange("not-a-token", registration="my-message-service")
    assert caught.value.status == 400
    assert caught.value.error == "invalid_request"
