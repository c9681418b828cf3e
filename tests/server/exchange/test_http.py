"""Token exchange over real HTTP on 127.0.0.1: the article's flow, discovery, lineage, bad input and audit."""

from __future__ import annotations

import base64
import json
from collections import Counter
from collections.abc import AsyncIterator
from typing import Any

import httpx
import pytest
from joserfc import jwt
from joserfc.jwk import KeySet
from tests.server.browser import basic_auth
from tests.server.exchange.http_support import MESSAGE_SERVICE, RELAY, article_server_config, user_access_token
from tests.support.server import newest_audit_events, running_server

from tokensmith.config.exchange import ACCESS_TOKEN_TYPE, JWT_TOKEN_TYPE
from tokensmith.config.server import TOKEN_EXCHANGE


@pytest.fixture(scope="module")
def database_url(tmp_path_factory: pytest.TempPathFactory) -> str:
    return f"sqlite+aiosqlite:///{tmp_path_factory.mktemp('exchange') / 'tokensmith.db'}"


@pytest.fixture(scope="module")
async def base_url(database_url: str) -> AsyncIterator[str]:
    async with running_server(article_server_config(database_url)) as url:
        yield url


@pytest.fixture
async def http(base_url: str) -> AsyncIterator[httpx.AsyncClient]:
    async with httpx.AsyncClient(base_url=base_url, follow_redirects=False, timeout=10) as client:
        yield client


async def exchange(http: httpx.AsyncClient, **params: str | list[str]) -> httpx.Response:
    return await http.post("/oauth2/token", data={"grant_type": TOKEN_EXCHANGE, **params}, headers=MESSAGE_SERVICE)


async def verified_claims(http: httpx.AsyncClient, token: str) -> dict[str, Any]:
    jwks = (await http.get("/oauth2/jwks")).json()
    return dict(jwt.decode(token, KeySet.import_key_set(jwks)).claims)


def b64(data: dict[str, Any]) -> str:
    return base64.urlsafe_b64encode(json.dumps(data).encode()).rstrip(b"=").decode()


async def test_the_articles_exchange_over_http(http: httpx.AsyncClient, database_url: str) -> None:
    subject_token = await user_access_token(http)
    subject_claims = await verified_claims(http, subject_token)
    assert subject_claims["aud"] == "user-service"
    # Exactly what Spring's TokenExchangeOAuth2AuthorizedClientProvider sends.
    response = await exchange(
        http,
        subject_token=subject_token,
        subject_token_type=JWT_TOKEN_TYPE,
        requested_token_type=ACCESS_TOKEN_TYPE,
        scope="message.read",
    )
    assert response.status_code == 200, response.text
    assert response.headers["cache-control"] == "no-store"
    body = response.json()
    assert body["issued_token_type"] == ACCESS_TOKEN_TYPE
    assert body["token_type"] == "Bearer"
    assert body["expires_in"] > 0
    claims = await verified_claims(http, body["access_token"])
    assert claims["sub"] == "baeldung"
    assert claims["aud"] == "message-service"
    assert claims["scope"] in ("message.read", ["message.read"])
    [event] = await newest_audit_events(database_url, 1)
    assert (event.outcome, event.client_id, event.subject) == ("granted", "message-service", "baeldung")


async def test_discovery_lists_the_grant_and_the_token_types(http: httpx.AsyncClient) -> None:
    for path in ("/.well-known/openid-configuration", "/.well-known/oauth-authorization-server"):
        metadata = (await http.get(path)).json()
        assert TOKEN_EXCHANGE in metadata["grant_types_supported"]
        assert JWT_TOKEN_TYPE in metadata["token_exchange_subject_token_types_supported"]
        assert metadata["token_exchange_requested_token_types_supported"] == [ACCESS_TOKEN_TYPE, JWT_TOKEN_TYPE]


async def test_revoking_a_subject_token_deactivates_what_was_exchanged_from_it(http: httpx.AsyncClient) -> None:
    parent = await user_access_token(http)
    child = (await exchange(http, subject_token=parent, subject_token_type=ACCESS_TOKEN_TYPE)).json()["access_token"]
    grandchild_response = await exchange(http, subject_token=child, subject_token_type=ACCESS_TOKEN_TYPE)
    grandchild = grandchild_response.json()["access_token"]

    introspected = await http.post("/oauth2/introspect", data={"token": grandchild}, headers=MESSAGE_SERVICE)
    assert introspected.json()["active"] is True

    revoked = await http.post("/oauth2/revoke", data={"token": parent}, headers=basic_auth())
    assert revoked.status_code == 200
    for token in (parent, child, grandchild):
        introspected = await http.post("/oauth2/introspect", data={"token": token}, headers=MESSAGE_SERVICE)
        assert introspected.json() == {"active": False}

    again = await exchange(http, subject_token=child, subject_token_type=ACCESS_TOKEN_TYPE)
    assert again.status_code == 400
    assert again.json() == {"error": "invalid_request", "error_description": "subject_token has been revoked"}


def _bad_requests(valid: str) -> list[tuple[str, dict[str, Any], str]]:
    header, payload, _ = valid.split(".")
    claims = json.loads(base64.urlsafe_b64decode(payload + "=" * (-len(payload) % 4)))
    return [
        ("missing subject_token", {"subject_token_type": ACCESS_TOKEN_TYPE}, "invalid_request"),
        ("malformed", {"subject_token": "garbage", "subject_token_type": ACCESS_TOKEN_TYPE}, "invalid_request"),
        (
            "alg none",
            {"subject_token": f"{b64({'alg': 'none'})}.{b64(claims)}.", "subject_token_type": ACCESS_TOKEN_TYPE},
            "invalid_request",
        ),
        (
            "untrusted issuer",
            {
                "subject_token": f"{header}.{b64({**claims, 'iss': 'https://evil.example'})}.c2ln",
                "subject_token_type": ACCESS_TOKEN_TYPE,
            },
            "invalid_request",
        ),
        ("oversized", {"subject_token": "a" * 20000, "subject_token_type": ACCESS_TOKEN_TYPE}, "invalid_request"),
        ("unknown type", {"subject_token": valid, "subject_token_type": "urn:example:x"}, "invalid_request"),
        (
            "refresh token type",
            {"subject_token": valid, "subject_token_type": "urn:ietf:params:oauth:token-type:refresh_token"},
            "invalid_request",
        ),
        (
            "refused audience",
            {"subject_token": valid, "subject_token_type": ACCESS_TOKEN_TYPE, "audience": "admin"},
            "invalid_target",
        ),
        (
            "resource with fragment",
            {"subject_token": valid, "subject_token_type": ACCESS_TOKEN_TYPE, "resource": "https://a.example/#x"},
            "invalid_target",
        ),
        (
            "scope escalation",
            {"subject_token": valid, "subject_token_type": ACCESS_TOKEN_TYPE, "scope": "admin"},
            "invalid_scope",
        ),
        (
            "delegation not allowed",
            {
                "subject_token": valid,
                "subject_token_type": ACCESS_TOKEN_TYPE,
                "actor_token": valid,
                "actor_token_type": ACCESS_TOKEN_TYPE,
            },
            "invalid_request",
        ),
        (
            "duplicate subject_token",
            {"subject_token": [valid, valid], "subject_token_type": ACCESS_TOKEN_TYPE},
            "invalid_request",
        ),
    ]


async def test_bad_input_gets_the_rfc_error_and_an_audit_event(http: httpx.AsyncClient, database_url: str) -> None:
    valid = await user_access_token(http)
    cases = _bad_requests(valid)
    for name, params, error in cases:
        response = await exchange(http, **params)
        assert response.status_code == 400, (name, response.text)
        assert response.headers["cache-control"] == "no-store"
        body = response.json()
        assert body["error"] == error, (name, body)
        assert body["error_description"], name
    events = await newest_audit_events(database_url, 200)
    refused = [e for e in events if e.outcome == "refused"]
    reasons = [e.reason or "" for e in refused[: len(cases)]]
    assert len(reasons) == len(cases)
    assert Counter(r.split(":")[0] for r in reasons) == Counter(error for _, _, error in cases)


async def test_a_client_without_the_grant_is_unauthorized_client(http: httpx.AsyncClient) -> None:
    valid = await user_access_token(http)
    response = await http.post(
        "/oauth2/token",
        data={"grant_type": TOKEN_EXCHANGE, "subject_token": valid, "subject_token_type": ACCESS_TOKEN_TYPE},
        headers=basic_auth(),
    )
    assert response.status_code == 400
    assert response.json()["error"] == "unauthorized_client"


async def test_delegation_over_http_names_the_actor_and_limits_the_chain(
    http: httpx.AsyncClient, base_url: str
) -> None:
    subject = await user_access_token(http)
    actor_response = await http.post("/oauth2/token", data={"grant_type": "client_credentials"}, headers=RELAY)
    actor = actor_response.json()["access_token"]
    delegation = {"actor_token": actor, "actor_token_type": ACCESS_TOKEN_TYPE, "subject_token_type": ACCESS_TOKEN_TYPE}
    response = await http.post(
        "/oauth2/token", data={"grant_type": TOKEN_EXCHANGE, "subject_token": subject, **delegation}, headers=RELAY
    )
    assert response.status_code == 200, response.text
    claims = await verified_claims(http, response.json()["access_token"])
    assert (claims["sub"], claims["aud"]) == ("baeldung", "message-relay")
    assert claims["act"] == {"sub": "message-relay", "iss": base_url}

    again = await http.post(
        "/oauth2/token",
        data={"grant_type": TOKEN_EXCHANGE, "subject_token": response.json()["access_token"], **delegation},
        headers=RELAY,
    )
    assert again.status_code == 400
    assert again.json()["error"] == "invalid_request"
    assert "chain too deep" in again.json()["error_description"]

    impersonation = await http.post(
        "/oauth2/token",
        data={"grant_type": TOKEN_EXCHANGE, "subject_token": subject, "subject_token_type": ACCESS_TOKEN_TYPE},
        headers=RELAY,
    )
    assert impersonation.status_code == 400
    assert impersonation.json()["error"] == "unauthorized_client"
