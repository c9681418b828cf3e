"""The article's server as the Transaction Token Service of one trust domain, for the Transaction Token tests."""

from __future__ import annotations

from typing import Any

import httpx
from tests.server.browser import basic_auth
from tests.server.client_assertions import EC_KEY, public_jwks
from tests.server.configs import config_data
from tests.server.exchange.http_support import ARTICLE_CLIENT, RELAY_CLIENT

from tokensmith.config.exchange import ACCESS_TOKEN_TYPE
from tokensmith.config.server import TOKEN_EXCHANGE, ServerConfig
from tokensmith.config.transaction_tokens import TXN_TOKEN_TYPE

TRUST_DOMAIN = "trust-domain.example"
EDGE_WORKLOAD = "user-service.trust-domain.example"
EDGE_CLIENT = {
    "registration": {
        "client-id": "user-service",
        "client-secret": "{noop}edge-secret",
        "client-authentication-methods": ["client_secret_basic"],
        "authorization-grant-types": [TOKEN_EXCHANGE],
        "jwks": public_jwks(EC_KEY),
    }
}
EDGE = basic_auth("user-service", "edge-secret")


def transaction_tokens(**overrides: Any) -> dict[str, Any]:
    settings: dict[str, Any] = {
        "trust-domain": TRUST_DOMAIN,
        "time-to-live": "2m",
        "max-context-bytes": 512,
        "clients": {
            "user-service": {
                "workload": EDGE_WORKLOAD,
                "scopes": ["message.read", "message.write", "profile.view"],
                "subject-token-types": [
                    "urn:ietf:params:oauth:token-type:access_token",
                    "urn:ietf:params:oauth:token-type:jwt",
                    "urn:ietf:params:oauth:token-type:self_signed",
                    "urn:ietf:params:oauth:token-type:unsigned_json",
                ],
                "scope-mappings": {"profile": ["profile.view"]},
            },
            # Further down the call chain: it may only replace the Transaction Token it received.
            "message-service": {
                "scopes": ["message.read", "profile.view"],
                "subject-token-types": ["urn:ietf:params:oauth:token-type:txn_token"],
                "request-context": False,
            },
        },
    }
    settings.update(overrides)
    return settings


def server_data(database_url: str | None = None, **overrides: Any) -> dict[str, Any]:
    data = config_data()
    data["clients"]["user-service"] = EDGE_CLIENT
    data["clients"]["message-service"] = ARTICLE_CLIENT
    data["clients"]["message-relay"] = RELAY_CLIENT
    data["users"] = [*data["users"], {"username": "baeldung", "password": "{noop}password"}]
    if database_url is not None:
        data["database-url"] = database_url
    data["transaction-tokens"] = transaction_tokens(**overrides)
    return data


def server_config(database_url: str) -> ServerConfig:
    return ServerConfig.model_validate(server_data(database_url))


async def txn_request(
    http: httpx.AsyncClient, headers: dict[str, str] = EDGE, **params: str | list[str]
) -> httpx.Response:
    """A Txn-Token Request for a Transaction Token of TRUST_DOMAIN by the client of ``headers``; a parameter
    given as "" is left out of the form."""
    form: dict[str, str | list[str]] = {
        "grant_type": TOKEN_EXCHANGE,
        "requested_token_type": TXN_TOKEN_TYPE,
        "audience": TRUST_DOMAIN,
        "subject_token_type": ACCESS_TOKEN_TYPE,
    }
    form.update(params)
    return await http.post("/oauth2/token", data={k: v for k, v in form.items() if v != ""}, headers=headers)
