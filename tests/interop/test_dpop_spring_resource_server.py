"""The article's Spring message-service (interop/spring, unchanged) as a DPoP resource server, on Spring Boot 3.5
(Spring Security 6.5) and 4.0 (Spring Security 7).

Spring Security applies its DPoP support (RFC 9449) to every `oauth2ResourceServer().jwt()` once
spring-security-oauth2-jose is on the class path, which the resource-server starter brings: nothing to configure.
tokensmith.client obtains DPoP-bound tokens (client credentials, and a token exchange keeping the binding) and signs
each call's proof; Spring must accept them and refuse the same token sent as Bearer or with another key's proof.
"""

from __future__ import annotations

import json

import httpx
import pytest
from tests.interop.expectations import explain, message_of
from tests.interop.spring_apps import BootLine, SpringApp
from tests.interop.user_tokens import jwt_parts

from tokensmith.client import (
    TOKEN_EXCHANGE,
    ClientCredentialsAuth,
    DPoPKey,
    IssuedToken,
    Registration,
    TokenExchangeAuth,
    TokenExchanger,
)

# Setup may build the Spring jars from Maven Central on a fresh machine, then start JVMs.
pytestmark = [pytest.mark.interop, pytest.mark.timeout(400)]


def message_reader(issuer: str) -> Registration:
    return Registration(
        "message-reader", "message-reader", "reader-secret", scopes=("message.read",), issuer_uri=issuer
    )


def bound_token(auth: ClientCredentialsAuth | TokenExchangeAuth, key: DPoPKey) -> IssuedToken:
    """The token ``auth`` used, checked to be bound to ``key``."""
    token = auth.source.cached()
    assert token is not None
    assert token.token_type == "DPoP", token
    header, claims = jwt_parts(token.access_token)
    assert claims["cnf"] == {"jkt": key.jkt}, claims
    assert header["typ"] == "JWT", f"Spring needs typ JWT (access-token-typ-by-audience): {header}"
    return token


async def test_spring_accepts_a_dpop_bound_token_with_its_proof(
    boot_line: BootLine,
    tokensmith_for_spring: str,
    spring_message_service_on_tokensmith: SpringApp,
    http: httpx.AsyncClient,
) -> None:
    message_service = spring_message_service_on_tokensmith
    what = f"[Spring Boot {boot_line.spring_boot}] message-service /message with a DPoP-bound token"
    key = DPoPKey()
    auth = ClientCredentialsAuth.for_registration(message_reader(tokensmith_for_spring), dpop=key)
    url = f"{message_service.url}/message"
    response = await http.get(url, auth=auth)
    token = bound_token(auth, key)
    assert response.request.headers["authorization"] == f"DPoP {token.access_token}"
    body = message_of(what, response, message_service)
    assert body["sub"] == "message-reader", json.dumps(body)
    assert "SCOPE_message.read" in body["authorities"], json.dumps(body)
    # A second call: a fresh proof (new jti, iat) with the same token.
    message_of(what, await http.get(url, auth=auth), message_service)

    as_bearer = await http.get(url, headers={"Authorization": f"Bearer {token.access_token}"})
    context = explain(f"{what}, sent as Bearer", as_bearer, message_service)
    assert as_bearer.status_code == 401, context
    assert 'error="invalid_token"' in as_bearer.headers.get("www-authenticate", ""), context

    other = DPoPKey()
    stolen = await http.get(
        url,
        headers={
            "Authorization": f"DPoP {token.access_token}",
            "DPoP": other.proof("GET", url, access_token=token.access_token),
        },
    )
    context = explain(f"{what}, with a proof by another key", stolen, message_service)
    assert stolen.status_code == 401, context
    assert "invalid_dpop_proof" in stolen.headers.get("www-authenticate", ""), context

    proof = key.proof("GET", url, access_token=token.access_token)
    headers = {"Authorization": f"DPoP {token.access_token}", "DPoP": proof}
    message_of(f"{what}, a proof used once", await http.get(url, headers=headers), message_service)
    replayed = await http.get(url, headers=headers)
    context = explain(f"{what}, the same proof again", replayed, message_service)
    assert replayed.status_code == 401, context
    assert "invalid_dpop_proof" in replayed.headers.get("www-authenticate", ""), context


async def test_spring_accepts_an_exchanged_token_that_stays_bound(
    boot_line: BootLine,
    tokensmith_for_spring: str,
    spring_message_service_on_tokensmith: SpringApp,
    http: httpx.AsyncClient,
) -> None:
    """user-service's own bound token, exchanged with a proof by the same key (as client message-service): the
    exchanged token is bound to that key and Spring takes it with the key's proof."""
    message_service = spring_message_service_on_tokensmith
    key = DPoPKey()
    registrations = [
        Registration(
            "user-service", "user-service", "user-secret", scopes=("user.read",), issuer_uri=tokensmith_for_spring
        ),
        Registration(
            "my-message-service",
            "message-service",
            "token",
            authorization_grant_type=TOKEN_EXCHANGE,
            scopes=("message.read",),
            issuer_uri=tokensmith_for_spring,
        ),
    ]
    async with TokenExchanger(registrations, dpop=key) as exchanger:
        subject = await exchanger.client_credentials("user-service")
        assert jwt_parts(subject.access_token)[1]["cnf"] == {"jkt": key.jkt}
        exchange = exchanger.auth_for(subject.access_token, registration="my-message-service")
        response = await http.get(f"{message_service.url}/message", auth=exchange)
        token = bound_token(exchange, key)
    claims = jwt_parts(token.access_token)[1]
    assert (claims["sub"], claims["aud"]) == ("user-service", "message-service"), claims
    body = message_of(
        f"[Spring Boot {boot_line.spring_boot}] message-service /message with an exchanged DPoP-bound token",
        response,
        message_service,
    )
    assert body["sub"] == "user-service", json.dumps(body)
