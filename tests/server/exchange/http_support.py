"""The article's server over HTTP, for the token-exchange integration tests."""

from __future__ import annotations

import httpx
from tests.server.browser import Browser, basic_auth, web_authorize_params
from tests.server.configs import config_data

from tokensmith.config.server import TOKEN_EXCHANGE, ServerConfig

ARTICLE_CLIENT = {
    "registration": {
        "client-id": "message-service",
        "client-secret": "{noop}token",
        "client-authentication-methods": ["client_secret_basic"],
        "authorization-grant-types": [TOKEN_EXCHANGE],
        "scopes": ["openid", "message.read"],
    }
}
MESSAGE_SERVICE = basic_auth("message-service", "token")
# A service that exchanges by delegation only: its own client-credentials token is the actor token.
RELAY_CLIENT = {
    "registration": {
        "client-id": "message-relay",
        "client-secret": "{noop}relay-secret",
        "authorization-grant-types": [TOKEN_EXCHANGE, "client_credentials"],
        "scopes": ["message.read"],
    },
    "token-exchange": {"impersonation": False, "delegation": True, "max-delegation-depth": 1},
}
RELAY = basic_auth("message-relay", "relay-secret")


def article_server_config(database_url: str) -> ServerConfig:
    data = config_data()
    data["clients"]["message-service"] = ARTICLE_CLIENT
    data["clients"]["message-relay"] = RELAY_CLIENT
    data["users"] = [*data["users"], {"username": "baeldung", "password": "{noop}password"}]
    data["database-url"] = database_url
    return ServerConfig.model_validate(data)


async def user_access_token(http: httpx.AsyncClient) -> str:
    """The article's user logs in at the front end (authorization code + PKCE): a token for user-service."""
    tokens = await Browser(http).tokens(web_authorize_params(), username="baeldung", password="password")
    token: str = tokens["access_token"]
    return token
