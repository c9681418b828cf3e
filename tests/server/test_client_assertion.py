"""private_key_jwt client authentication (RFC 7523 2.2 / 3, OpenID Connect Core 9), without HTTP."""

from __future__ import annotations

import time
from collections.abc import AsyncIterator
from datetime import timedelta
from pathlib import Path
from typing import Any

import httpx
import pytest
from tests.server.client_assertions import (
    EC_KEY,
    OTHER_EC_KEY,
    RSA_KEY,
    SIGNED_CLIENT,
    assertion,
    assertion_form,
    hs256_forged,
    public_jwks,
    signed_client,
    unsigned,
)
from tests.server.configs import SERVICE_CLIENT, config_data
from tests.server.protocol import form

from tokensmith.config.server import GRANT_TYPES, ServerConfig
from tokensmith.errors import OAuthError
from tokensmith.server.clock import utc_now
from tokensmith.server.core.client_assertion import ClientAssertionVerifier, client_assertion_metadata
from tokensmith.server.core.client_auth import authenticate_client, require_confidential
from tokensmith.server.core.grants.base import AuthenticatedClient
from tokensmith.server.core.metadata import server_metadata
from tokensmith.server.core.passwords import SecretVerifier
from tokensmith.store.sql import SqlStore

ISSUER = "http://localhost:9001"
TOKEN_ENDPOINT = f"{ISSUER}/oauth2/token"
JWKS_URI = "https://keys.client.example/jwks"


def make_config(**registration: Any) -> ServerConfig:
    data = config_data()
    data["clients"]["signed"] = signed_client(**registration)
    return ServerConfig.model_validate(data)


CONFIG = make_config()


@pytest.fixture
async def sql_store(tmp_path: Path) -> AsyncIterator[SqlStore]:
    store = SqlStore(f"sqlite+aiosqlite:///{tmp_path / 'tokensmith.db'}")
    await store.initialize()
    try:
        yield store
    finally:
        await store.close()


@pytest.fixture
async def verifier(sql_store: SqlStore) -> AsyncIterator[ClientAssertionVerifier]:
    verifier = ClientAssertionVerifier(issuer=ISSUER, store=sql_store, clock=utc_now, clock_skew=timedelta(seconds=30))
    yield verifier
    await verifier.aclose()


async def authenticate(
    verifier: ClientAssertionVerifier,
    client_assertion: str,
    *,
    config: ServerConfig = CONFIG,
    authorization: str | None = None,
    **params: str,
) -> AuthenticatedClient:
    request = form(**assertion_form(client_assertion, **params))
    return await authenticate_client(authorization, request, config, SecretVerifier(), assertions=verifier)


async def refused(verifier: ClientAssertionVerifier, client_assertion: str, **kwargs: Any) -> OAuthError:
    with pytest.raises(OAuthError) as caught:
        await authenticate(verifier, client_assertion, **kwargs)
    return caught.value


@pytest.mark.parametrize(("key", "alg"), [(EC_KEY, "ES256"), (RSA_KEY, "RS256"), (RSA_KEY, "PS256")])
async def test_signed_assertion_authenticates(verifier: ClientAssertionVerifier, key: Any, alg: str) -> None:
    client = await authenticate(verifier, assertion(TOKEN_ENDPOINT, key=key, alg=alg))
    assert client.client_id == SIGNED_CLIENT
    assert client.method == "private_key_jwt"
    require_confidential(client, "introspection")  # a private key proves as much as a secret


@pytest.mark.parametrize("audience", [TOKEN_ENDPOINT, ISSUER, ["https://other.example", TOKEN_ENDPOINT]])
async def test_audience_is_the_token_endpoint_or_the_issuer(verifier: ClientAssertionVerifier, audience: Any) -> None:
    await authenticate(verifier, assertion(audience))


async def test_wrong_audience_is_refused(verifier: ClientAssertionVerifier) -> None:
    error = await refused(verifier, assertion("https://other.example/oauth2/token"))
    assert error.error == "invalid_client"
    assert error.status_code == 401
    assert "aud" in error.description


async def test_replayed_assertion_is_refused(verifier: ClientAssertionVerifier) -> None:
    once = assertion(TOKEN_ENDPOINT)
    await authenticate(verifier, once)
    error = await refused(verifier, once)
    assert error.error == "invalid_client"
    assert "already used" in error.description


@pytest.mark.parametrize(
    ("claims", "reason"),
    [
        ({"now": time.time() - 600}, "expired"),
        ({"exp": None}, "no 'exp'"),
        ({"lifetime": 3600}, "too far in the future"),
        ({"nbf": int(time.time()) + 600}, "not valid yet"),
        ({"iat": int(time.time()) + 600}, "issued in the future"),
        ({"jti": None}, "'jti'"),
        ({"jti": "x" * 256}, "'jti'"),
        ({"iss": "someone-else"}, "'iss' and 'sub'"),
        ({"exp": "soon"}, "must be a number"),
    ],
)
async def test_bad_claims_are_refused(verifier: ClientAssertionVerifier, claims: dict[str, Any], reason: str) -> None:
    error = await refused(verifier, assertion(TOKEN_ENDPOINT, **claims))
    assert error.error == "invalid_client"
    assert reason in error.description


async def test_alg_none_is_refused(verifier: ClientAssertionVerifier) -> None:
    error = await refused(verifier, unsigned(TOKEN_ENDPOINT))
    assert error.error == "invalid_client"
    assert "algorithm 'none'" in error.description


async def test_hs256_is_refused(verifier: ClientAssertionVerifier) -> None:
    """HS/RS confusion: an HMAC made with the client's public key (or any secret) is never accepted."""
    forged = hs256_forged(TOKEN_ENDPOINT)
    error = await refused(verifier, forged)
    assert "algorithm 'HS256'" in error.description


async def test_key_type_must_match_the_algorithm(verifier: ClientAssertionVerifier) -> None:
    # Header says RS256 with the EC key's kid: no RSA key has that kid, so nothing may verify it.
    forged = assertion(TOKEN_ENDPOINT, key=RSA_KEY, alg="RS256", header={"kid": "ec-1"})
    error = await refused(verifier, forged)
    assert "no registered key" in error.description


async def test_signature_by_an_unregistered_key_is_refused(verifier: ClientAssertionVerifier) -> None:
    error = await refused(verifier, assertion(TOKEN_ENDPOINT, key=OTHER_EC_KEY))
    assert "signature does not verify" in error.description


async def test_algorithms_can_be_restricted_per_client(verifier: ClientAssertionVerifier) -> None:
    config = make_config(**{"token-endpoint-authentication-signing-algorithms": ["ES256"]})
    error = await refused(verifier, assertion(TOKEN_ENDPOINT, key=RSA_KEY, alg="RS256"), config=config)
    assert "algorithm 'RS256'" in error.description


async def test_request_shape(verifier: ClientAssertionVerifier) -> None:
    good = assertion(TOKEN_ENDPOINT)
    wrong_type = await refused(verifier, good, client_assertion_type="urn:example:saml")
    assert wrong_type.error == "invalid_client"
    with pytest.raises(OAuthError) as lone:
        await authenticate_client(None, form(client_assertion=good), CONFIG, SecretVerifier(), assertions=verifier)
    assert lone.value.error == "invalid_request"
    both = await refused(verifier, good, authorization="Basic c2lnbmVkLXNlcnZpY2U6eA==")
    assert both.error == "invalid_request"
    other_id = await refused(verifier, good, client_id=SERVICE_CLIENT)
    assert other_id.error == "invalid_request"
    garbage = await refused(verifier, "not-a-jwt")
    assert garbage.error == "invalid_client"
    # Matching client_id in the form is fine (tokensmith.client sends it).
    await authenticate(verifier, good, client_id=SIGNED_CLIENT)


async def test_method_must_be_registered(verifier: ClientAssertionVerifier) -> None:
    # reporting-service uses secrets only: a valid-looking assertion for it is refused, without detail.
    error = await refused(verifier, assertion(TOKEN_ENDPOINT, client_id=SERVICE_CLIENT))
    assert error.description == "client authentication failed"


async def test_without_a_verifier_the_method_is_refused() -> None:
    request = form(**assertion_form(assertion(TOKEN_ENDPOINT)))
    with pytest.raises(OAuthError) as caught:
        await authenticate_client(None, request, CONFIG, SecretVerifier())
    assert caught.value.error == "invalid_client"


class JwksServer:
    """A client's jwks-uri, served through httpx.MockTransport and counting requests."""

    def __init__(self, jwks: dict[str, Any]) -> None:
        self.jwks = jwks
        self.requests = 0
        self.fail = False

    def handle(self, request: httpx.Request) -> httpx.Response:
        self.requests += 1
        if self.fail:
            return httpx.Response(503)
        return httpx.Response(200, json=self.jwks)


class Clock:
    def __init__(self) -> None:
        self.now = utc_now()

    def __call__(self) -> Any:
        return self.now


async def test_jwks_uri_fetched_cached_and_refetched_on_unknown_kid(sql_store: SqlStore) -> None:
    server = JwksServer(public_jwks(EC_KEY))
    clock = Clock()
    http = httpx.AsyncClient(transport=httpx.MockTransport(server.handle))
    verifier = ClientAssertionVerifier(
        issuer=ISSUER, store=sql_store, clock=clock, clock_skew=timedelta(seconds=30), http=http
    )
    config = make_config(jwks=None, **{"jwks-uri": JWKS_URI})
    try:
        await authenticate(verifier, assertion(TOKEN_ENDPOINT), config=config)
        await authenticate(verifier, assertion(TOKEN_ENDPOINT), config=config)
        assert server.requests == 1  # cached

        # The client rotates to an RSA key: once the cool-down since the last fetch is over, the unknown kid
        # refetches once...
        server.jwks = public_jwks(RSA_KEY)
        clock.now += timedelta(seconds=31)
        await authenticate(verifier, assertion(TOKEN_ENDPOINT, key=RSA_KEY, alg="RS256"), config=config)
        assert server.requests == 2
        # ...and further unknown kids wait for the cool-down instead of hammering the client's host.
        for _ in range(3):
            await refused(verifier, assertion(TOKEN_ENDPOINT, key=OTHER_EC_KEY, header={"kid": "nope"}), config=config)
        assert server.requests == 2
        clock.now += timedelta(seconds=31)
        await refused(verifier, assertion(TOKEN_ENDPOINT, key=OTHER_EC_KEY, header={"kid": "nope"}), config=config)
        assert server.requests == 3

        # Unreachable later: the cached keys keep serving.
        server.fail = True
        clock.now += timedelta(minutes=11)
        await authenticate(
            verifier, assertion(TOKEN_ENDPOINT, key=RSA_KEY, alg="RS256", now=clock.now.timestamp()), config=config
        )
    finally:
        await verifier.aclose()
        await http.aclose()


def test_configuration_rules() -> None:
    with pytest.raises(ValueError, match="private_key_jwt needs the client's public keys"):
        make_config(jwks=None)
    with pytest.raises(ValueError, match="private key material"):
        make_config(jwks={"keys": [EC_KEY.as_dict(private=True)]})
    with pytest.raises(ValueError, match="RSA or EC public key"):
        make_config(jwks={"keys": [{"kty": "oct", "k": "c2VjcmV0"}]})
    with pytest.raises(ValueError, match="token-endpoint-authentication-signing-algorithms"):
        make_config(**{"token-endpoint-authentication-signing-algorithms": ["HS256"]})
    with pytest.raises(ValueError, match="http"):
        make_config(**{"jwks-uri": "file:///etc/keys.json"})
    # A client with both secret and key methods needs both credentials; key-only needs no secret.
    assert make_config().client_by_id(SIGNED_CLIENT) is not None


def test_discovery_advertises_private_key_jwt(verifier: ClientAssertionVerifier) -> None:
    metadata = server_metadata(CONFIG, grant_types=GRANT_TYPES, contributors=[verifier])
    for endpoint in ("token", "introspection", "revocation"):
        assert "private_key_jwt" in metadata[f"{endpoint}_endpoint_auth_methods_supported"]
        assert metadata[f"{endpoint}_endpoint_auth_signing_alg_values_supported"] == ["ES256", "PS256", "RS256"]
    plain = ServerConfig.model_validate(config_data())
    assert client_assertion_metadata(plain) == {}
    assert (
        "private_key_jwt"
        not in server_metadata(plain, grant_types=GRANT_TYPES, contributors=[verifier])[
            "token_endpoint_auth_methods_supported"
        ]
    )
