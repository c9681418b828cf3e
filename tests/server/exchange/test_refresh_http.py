"""Refresh tokens from a token exchange over real HTTP: issued only where the policy allows, refresh keeps the
exchanged context, rotation and reuse detection, and revoking the subject token (RFC 7009) kills them."""

from __future__ import annotations

from collections.abc import AsyncIterator
from typing import Any

import httpx
import pytest
from joserfc import jwt
from joserfc.jwk import KeySet
from tests.server.browser import basic_auth
from tests.server.exchange.http_support import MESSAGE_SERVICE, article_server_config, user_access_token
from tests.support.server import running_server

from tokensmith.config.exchange import ACCESS_TOKEN_TYPE, REFRESH_TOKEN_TYPE
from tokensmith.config.server import REFRESH_TOKEN, TOKEN_EXCHANGE, ServerConfig

REFRESHING_CLIENT = {
    "registration": {
        "client-id": "inbox-service",
        "client-secret": "{noop}inbox-secret",
        "authorization-grant-types": [TOKEN_EXCHANGE, REFRESH_TOKEN],
        "scopes": ["message.read", "message.write"],
    },
    "token-exchange": {
        "issue-refresh-token": True,
        "audiences": {"message-service": {"scopes": ["message.read"]}},
    },
}
INBOX = basic_auth("inbox-service", "inbox-secret")


@pytest.fixture(scope="module")
async def base_url(tmp_path_factory: pytest.TempPathFactory) -> AsyncIterator[str]:
    config = article_server_config(f"sqlite+aiosqlite:///{tmp_path_factory.mktemp('refresh') / 'tokensmith.db'}")
    data = config.model_dump(by_alias=True)
    data["clients"]["inbox"] = REFRESHING_CLIENT
    async with running_server(ServerConfig.model_validate(data)) as url:
        yield url


@pytest.fixture
async def http(base_url: str) -> AsyncIterator[httpx.AsyncClient]:
    async with httpx.AsyncClient(base_url=base_url, follow_redirects=False, timeout=10) as client:
        yield client


async def exchange(http: httpx.AsyncClient, auth: dict[str, str], subject_token: str, **params: str) -> httpx.Response:
    data = {
        "grant_type": TOKEN_EXCHANGE,
        "subject_token": subject_token,
        "subject_token_type": ACCESS_TOKEN_TYPE,
        **params,
    }
    return await http.post("/oauth2/token", data=data, headers=auth)


async def refresh(http: httpx.AsyncClient, refresh_token: str) -> httpx.Response:
    data = {"grant_type": "refresh_token", "refresh_token": refresh_token}
    return await http.post("/oauth2/token", data=data, headers=INBOX)


async def claims(http: httpx.AsyncClient, token: str) -> dict[str, Any]:
    jwks = (await http.get("/oauth2/jwks")).json()
    return dict(jwt.decode(token, KeySet.import_key_set(jwks)).claims)


async def test_refresh_token_only_where_the_policy_allows_it(http: httpx.AsyncClient) -> None:
    subject = await user_access_token(http)
    article = await exchange(http, MESSAGE_SERVICE, subject)
    assert article.status_code == 200, article.text
    assert "refresh_token" not in article.json()
    asked = await exchange(http, MESSAGE_SERVICE, subject, requested_token_type=REFRESH_TOKEN_TYPE)
    assert asked.status_code == 400
    assert asked.json()["error"] == "invalid_request"

    allowed = await exchange(http, INBOX, subject, audience="message-service")
    assert allowed.status_code == 200, allowed.text
    assert allowed.json()["refresh_token"]
    metadata = (await http.get("/.well-known/openid-configuration")).json()
    assert REFRESH_TOKEN_TYPE in metadata["token_exchange_requested_token_types_supported"]


async def test_refresh_keeps_the_exchanged_context_and_rotates(http: httpx.AsyncClient) -> None:
    subject = await user_access_token(http)
    first = (await exchange(http, INBOX, subject, audience="message-service")).json()
    exchanged = await claims(http, first["access_token"])
    assert exchanged["aud"] == "message-service"

    second = await refresh(http, first["refresh_token"])
    assert second.status_code == 200, second.text
    body = second.json()
    refreshed = await claims(http, body["access_token"])
    for claim in ("sub", "aud", "scope", "client_id"):
        assert refreshed[claim] == exchanged[claim], claim
    assert refreshed["exp"] <= (await claims(http, subject))["exp"]
    assert body["refresh_token"] != first["refresh_token"]

    # Reuse of the spent refresh token: refused, and the whole family goes with it.
    reused = await refresh(http, first["refresh_token"])
    assert reused.status_code == 400
    assert reused.json()["error"] == "invalid_grant"
    assert (await refresh(http, body["refresh_token"])).json()["error"] == "invalid_grant"


async def test_revoking_the_subject_token_kills_the_refresh_token(http: httpx.AsyncClient) -> None:
    subject = await user_access_token(http)
    first = (await exchange(http, INBOX, subject, audience="message-service")).json()
    second = (await refresh(http, first["refresh_token"])).json()

    # The user's client revokes the token it got at login (RFC 7009): everything exchanged from it dies.
    revoked = await http.post("/oauth2/revoke", data={"token": subject}, headers=basic_auth())
    assert revoked.status_code == 200
    introspected = await http.post("/oauth2/introspect", data={"token": second["refresh_token"]}, headers=INBOX)
    assert introspected.json() == {"active": False}
    introspected = await http.post("/oauth2/introspect", data={"token": second["access_token"]}, headers=INBOX)
    assert introspected.json() == {"active": False}
    refused = await refresh(http, second["refresh_token"])
    assert refused.status_code == 400
    assert refused.json()["error"] == "invalid_grant"


async def test_requested_token_type_refresh_token(http: httpx.AsyncClient) -> None:
    subject = await user_access_token(http)
    response = await exchange(http, INBOX, subject, audience="message-service", requested_token_type=REFRESH_TOKEN_TYPE)
    assert response.status_code == 200, response.text
    body = response.json()
    assert body["issued_token_type"] == REFRESH_TOKEN_TYPE
    assert body["token_type"] == "N_A"
    redeemed = await refresh(http, body["access_token"])
    assert redeemed.status_code == 200, redeemed.text
    assert (await claims(http, redeemed.json()["access_token"]))["aud"] == "message-service"
