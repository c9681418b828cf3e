"""Authlib's AsyncOAuth2Client, unmodified, against tokensmith and against Spring Authorization Server.

Authorization code with PKCE (login completed over HTTP), ID token validation the way Authlib's own OpenID client
does it, refresh, client credentials, and RFC 8693 token exchange through ``fetch_token(grant_type=...)``.
"""

from __future__ import annotations

import warnings
from dataclasses import dataclass, field
from typing import Any

import httpx
import pytest
from authlib.deprecate import AuthlibDeprecationWarning
from joserfc import jwt
from joserfc.jwk import KeySet
from joserfc.jws import JWSRegistry
from tests.interop.http_login import login_over_http
from tests.interop.spring_apps import SpringApp
from tests.interop.user_tokens import (
    PASSWORD,
    SPRING_AS_APP,
    TOKENSMITH_APP,
    USERNAME,
    LoginClient,
    discover,
    jwt_parts,
)

with warnings.catch_warnings():
    # Authlib 1.9 announces, on import, that it will move from httpx to the httpx2 fork; it still runs on httpx.
    warnings.simplefilter("ignore", AuthlibDeprecationWarning)
    from authlib.common.security import generate_token
    from authlib.integrations.httpx_client import AsyncOAuth2Client, OAuthError
    from authlib.oidc.core import CodeIDToken

# Setup may build the Spring jars from Maven Central on a fresh machine, then start JVMs.
pytestmark = [pytest.mark.interop, pytest.mark.timeout(400)]

TOKEN_EXCHANGE = "urn:ietf:params:oauth:grant-type:token-exchange"
ACCESS_TOKEN_TYPE = "urn:ietf:params:oauth:token-type:access_token"
PEER = "Authlib AsyncOAuth2Client"
# (client id, secret): user-service's own client, and message-service, the article's exchanging client.
SERVICE_CLIENT = ("user-service", "user-secret")
EXCHANGE_CLIENT = ("message-service", "token")


@dataclass
class Outcome:
    """Each step's result, or the error Authlib raised (with the server's response when it has one)."""

    results: dict[str, Any] = field(default_factory=dict)
    errors: dict[str, str] = field(default_factory=dict)

    def failure_report(self) -> str:
        return "\n".join(f"[{PEER}] step {step}: {error}" for step, error in self.errors.items())


def describe(exc: Exception) -> str:
    text = f"{type(exc).__name__}: {exc}"
    response = getattr(exc, "response", None)
    if isinstance(response, httpx.Response):
        text += f" -- {response.request.method} {response.request.url} -> HTTP {response.status_code} {response.text}"
    return text


async def run_flow(
    http: httpx.AsyncClient, issuer: str, login: LoginClient, service: tuple[str, str], exchanger: tuple[str, str]
) -> Outcome:
    outcome = Outcome()
    metadata = await discover(http, issuer)
    token_endpoint = metadata["token_endpoint"]

    async with AsyncOAuth2Client(
        login.client_id,
        login.client_secret,
        scope=login.scope,
        redirect_uri=login.redirect_uri,
        code_challenge_method="S256",
        token_endpoint_auth_method="client_secret_basic",
    ) as app:
        verifier, nonce = generate_token(48), generate_token(20)
        url, state = app.create_authorization_url(
            metadata["authorization_endpoint"], code_verifier=verifier, nonce=nonce
        )
        try:
            callback = (await login_over_http(http, url, login.redirect_uri, USERNAME, PASSWORD)).callback_url
            token = await app.fetch_token(
                token_endpoint, authorization_response=callback, state=state, code_verifier=verifier
            )
            outcome.results["authorization_code"] = dict(token)
        except Exception as exc:
            outcome.errors["authorization_code"] = describe(exc)
            return outcome

        try:
            jwks = KeySet.import_key_set((await http.get(metadata["jwks_uri"])).json())
            algorithms = metadata.get("id_token_signing_alg_values_supported") or ["RS256"]
            decoded = jwt.decode(
                token["id_token"], jwks, registry=JWSRegistry(algorithms=algorithms, strict_check_header=False)
            )
            claims = CodeIDToken(
                decoded.claims,
                decoded.header,
                {"iss": {"values": [metadata["issuer"]]}},
                {"nonce": nonce, "client_id": login.client_id, "access_token": token["access_token"]},
            )
            claims.validate(leeway=60)
            outcome.results["id_token"] = dict(claims)
        except Exception as exc:
            outcome.errors["id_token"] = describe(exc)

        try:
            refreshed = await app.refresh_token(token_endpoint, refresh_token=token["refresh_token"])
            outcome.results["refresh"] = dict(refreshed)
        except Exception as exc:
            outcome.errors["refresh"] = describe(exc)
            return outcome

    async with AsyncOAuth2Client(*service, token_endpoint_auth_method="client_secret_basic") as service_client:
        try:
            issued = await service_client.fetch_token(
                token_endpoint, grant_type="client_credentials", scope="user.read"
            )
            outcome.results["client_credentials"] = dict(issued)
        except Exception as exc:
            outcome.errors["client_credentials"] = describe(exc)

    async with AsyncOAuth2Client(*exchanger, token_endpoint_auth_method="client_secret_basic") as exchange_client:
        try:
            exchanged = await exchange_client.fetch_token(
                token_endpoint,
                grant_type=TOKEN_EXCHANGE,
                # The refreshed token: Spring Authorization Server forgets the previous one on refresh.
                subject_token=outcome.results["refresh"]["access_token"],
                subject_token_type=ACCESS_TOKEN_TYPE,
                scope="message.read",
            )
            outcome.results["token_exchange"] = dict(exchanged)
        except Exception as exc:
            outcome.errors["token_exchange"] = describe(exc)
    return outcome


def check_common(outcome: Outcome) -> None:
    assert not outcome.errors, outcome.failure_report()
    code = outcome.results["authorization_code"]
    assert jwt_parts(code["access_token"])[1]["sub"] == USERNAME, code
    assert outcome.results["id_token"]["sub"] == USERNAME, outcome.results["id_token"]
    assert outcome.results["refresh"]["access_token"] != code["access_token"], outcome.results["refresh"]
    exchanged = outcome.results["token_exchange"]
    assert exchanged["issued_token_type"] == ACCESS_TOKEN_TYPE, exchanged
    assert exchanged["expires_in"] > 0, exchanged
    claims = jwt_parts(exchanged["access_token"])[1]
    assert claims["sub"] == USERNAME, claims
    assert claims["aud"] in ("message-service", ["message-service"]), claims


async def test_authlib_against_tokensmith(tokensmith_rfc: str, http: httpx.AsyncClient) -> None:
    outcome = await run_flow(http, tokensmith_rfc, TOKENSMITH_APP, SERVICE_CLIENT, EXCHANGE_CLIENT)
    check_common(outcome)
    assert outcome.results["refresh"]["refresh_token"] != outcome.results["authorization_code"]["refresh_token"], (
        "tokensmith rotates refresh tokens on every use"
    )
    assert jwt_parts(outcome.results["token_exchange"]["access_token"])[1]["scope"] == "message.read"


async def test_authlib_against_spring_authorization_server(
    spring_authorization_server: SpringApp, http: httpx.AsyncClient
) -> None:
    outcome = await run_flow(http, spring_authorization_server.url, SPRING_AS_APP, SERVICE_CLIENT, EXCHANGE_CLIENT)
    check_common(outcome)
    # Spring writes scope as a JSON array in its exchanged tokens.
    assert jwt_parts(outcome.results["token_exchange"]["access_token"])[1]["scope"] == ["message.read"]


async def test_authlib_exchange_naming_an_audience_at_tokensmith(tokensmith_rfc: str, http: httpx.AsyncClient) -> None:
    """tokensmith honours RFC 8693 `audience`: an allowed target is issued, any other is invalid_target."""
    token_endpoint = (await discover(http, tokensmith_rfc))["token_endpoint"]
    async with (
        AsyncOAuth2Client(*SERVICE_CLIENT) as service,
        AsyncOAuth2Client(*EXCHANGE_CLIENT) as exchanger,
    ):
        subject = await service.fetch_token(token_endpoint, grant_type="client_credentials", scope="user.read")
        exchange = {
            "grant_type": TOKEN_EXCHANGE,
            "subject_token": subject["access_token"],
            "subject_token_type": ACCESS_TOKEN_TYPE,
        }
        issued = await exchanger.fetch_token(token_endpoint, audience="message-service", **exchange)
        claims = jwt_parts(issued["access_token"])[1]
        assert (claims["sub"], claims["aud"]) == ("user-service", "message-service"), claims
        with pytest.raises(OAuthError) as refused:
            await exchanger.fetch_token(token_endpoint, audience="archive-service", **exchange)
    assert refused.value.error == "invalid_target", f"[{PEER}] step token_exchange(audience): {refused.value}"
