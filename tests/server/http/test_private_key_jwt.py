"""private_key_jwt over real HTTP: token, introspection and revocation endpoints, discovery, and
tokensmith.client's private_key_jwt support against our server."""

from __future__ import annotations

import time
from collections.abc import AsyncIterator

import httpx
import pytest
from tests.server.client_assertions import (
    EC_KEY,
    RSA_KEY,
    SIGNED_CLIENT,
    assertion,
    assertion_form,
    hs256_forged,
    signed_client,
    unsigned,
)
from tests.server.configs import config_data
from tests.support.server import running_server

from tokensmith.client import TokenExchanger, TokenRequestError, load_client_properties
from tokensmith.config.server import TOKEN_EXCHANGE, ServerConfig


@pytest.fixture(scope="module")
async def base_url() -> AsyncIterator[str]:
    data = config_data()
    client = signed_client()
    client["registration"]["authorization-grant-types"] = ["client_credentials", TOKEN_EXCHANGE]
    data["clients"]["signed"] = client
    async with running_server(ServerConfig.model_validate(data)) as url:
        yield url


def token_endpoint(http: httpx.AsyncClient) -> str:
    return f"{http.base_url}".rstrip("/") + "/oauth2/token"


async def client_credentials(http: httpx.AsyncClient, client_assertion: str) -> httpx.Response:
    return await http.post(
        "/oauth2/token", data=assertion_form(client_assertion, grant_type="client_credentials", scope="reports.read")
    )


async def test_client_credentials_with_a_signed_assertion(http: httpx.AsyncClient) -> None:
    response = await client_credentials(http, assertion(token_endpoint(http)))
    assert response.status_code == 200, response.text
    assert response.json()["scope"] == "reports.read"
    # RS256 with the client's RSA key, audience = issuer, works as well.
    issuer = f"{http.base_url}".rstrip("/")
    response = await client_credentials(http, assertion(issuer, key=RSA_KEY, alg="RS256"))
    assert response.status_code == 200, response.text


async def test_replayed_assertion_is_refused(http: httpx.AsyncClient) -> None:
    once = assertion(token_endpoint(http))
    assert (await client_credentials(http, once)).status_code == 200
    replay = await client_credentials(http, once)
    assert replay.status_code == 401
    assert replay.json()["error"] == "invalid_client"
    assert "already used" in replay.json()["error_description"]
    assert "invalid_client" in replay.headers["www-authenticate"]
    assert replay.headers["cache-control"] == "no-store"


@pytest.mark.parametrize(
    ("make", "reason"),
    [
        (lambda url: assertion("https://elsewhere.example/oauth2/token"), "aud"),
        (lambda url: assertion(url, now=time.time() - 600), "expired"),
        (lambda url: assertion(url, lifetime=86400), "too far in the future"),
        (unsigned, "algorithm 'none'"),
        (hs256_forged, "algorithm 'HS256'"),
    ],
)
async def test_bad_assertions_get_invalid_client(http: httpx.AsyncClient, make: object, reason: str) -> None:
    assert callable(make)
    response = await client_credentials(http, make(token_endpoint(http)))
    assert response.status_code == 401
    body = response.json()
    assert body["error"] == "invalid_client"
    assert reason in body["error_description"]


async def test_introspection_and_revocation_accept_private_key_jwt(http: httpx.AsyncClient) -> None:
    issued = await client_credentials(http, assertion(token_endpoint(http)))
    token = issued.json()["access_token"]
    introspected = await http.post(
        "/oauth2/introspect", data=assertion_form(assertion(token_endpoint(http)), token=token)
    )
    assert introspected.status_code == 200, introspected.text
    assert introspected.json()["active"] is True
    assert introspected.json()["client_id"] == SIGNED_CLIENT

    revoked = await http.post("/oauth2/revoke", data=assertion_form(assertion(token_endpoint(http)), token=token))
    assert revoked.status_code == 200, revoked.text
    again = await http.post("/oauth2/introspect", data=assertion_form(assertion(token_endpoint(http)), token=token))
    assert again.json() == {"active": False}


async def test_discovery_advertises_the_method_and_algorithms(http: httpx.AsyncClient) -> None:
    metadata = (await http.get("/.well-known/oauth-authorization-server")).json()
    assert "private_key_jwt" in metadata["token_endpoint_auth_methods_supported"]
    assert "private_key_jwt" in metadata["introspection_endpoint_auth_methods_supported"]
    assert metadata["token_endpoint_auth_signing_alg_values_supported"] == ["ES256", "PS256", "RS256"]


async def test_tokensmith_client_authenticates_with_its_private_key(base_url: str) -> None:
    properties = load_client_properties(
        {
            "registration": {
                "signed": {
                    "provider": "tokensmith",
                    "client-id": SIGNED_CLIENT,
                    "client-authentication-method": "private_key_jwt",
                    "private-key-jwk": EC_KEY.as_dict(private=True),
                    "authorization-grant-type": "client_credentials",
                    "scope": "reports.read",
                },
                "signed-exchange": {
                    "provider": "tokensmith",
                    "client-id": SIGNED_CLIENT,
                    "client-authentication-method": "private_key_jwt",
                    "private-key-jwk": RSA_KEY.as_dict(private=True),
                    "authorization-grant-type": TOKEN_EXCHANGE,
                    "scope": "reports.read",
                },
                "wrong-key": {
                    "provider": "tokensmith",
                    "client-id": "reporting-service",
                    "client-authentication-method": "private_key_jwt",
                    "private-key-jwk": EC_KEY.as_dict(private=True),
                    "authorization-grant-type": "client_credentials",
                },
            },
            "provider": {"tokensmith": {"issuer-uri": base_url}},
        }
    )
    async with TokenExchanger(properties) as exchanger:
        issued = await exchanger.client_credentials("signed")
        assert issued.access_token
        # A second token request signs a new assertion (new jti): no replay refusal.
        exchanged = await exchanger.exchange(issued.access_token, registration="signed-exchange")
        assert exchanged.access_token != issued.access_token
        with pytest.raises(TokenRequestError) as refused:
            await exchanger.client_credentials("wrong-key")
    assert refused.value.status == 401
    assert refused.value.error == "invalid_client"
