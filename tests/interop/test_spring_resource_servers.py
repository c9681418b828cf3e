"""The article's Spring Boot user-service and message-service (interop/spring), on Spring Boot 3.5 and 4.0.

Against ``tokensmith serve --config examples/authorization-server.yaml`` (the user's token from the login flow,
exchanged at tokensmith by Spring's TokenExchangeOAuth2AuthorizedClientProvider), and, as the baseline, against
Spring Authorization Server.
"""

from __future__ import annotations

import json
import re

import httpx
import pytest
from tests.interop.expectations import assert_exchanged_for_message_service, explain, message_of
from tests.interop.spring_apps import BootLine, SpringApp
from tests.interop.user_tokens import (
    EXAMPLE_APP,
    SPRING_AS_APP,
    bearer,
    client_credentials_token,
    jwt_parts,
    user_token,
)

# Setup may build the Spring jars from Maven Central on a fresh machine, then start JVMs.
pytestmark = [pytest.mark.interop, pytest.mark.timeout(400)]


async def test_article_flow_on_spring_authorization_server(
    boot_line: BootLine,
    spring_authorization_server: SpringApp,
    spring_services_on_spring_as: tuple[SpringApp, SpringApp],
    http: httpx.AsyncClient,
) -> None:
    """Baseline: the article, all Spring (authorization server, user-service, message-service)."""
    user_service, message_service = spring_services_on_spring_as
    tokens = await user_token(http, spring_authorization_server.url, SPRING_AS_APP)
    response = await http.get(f"{user_service.url}/user/message", headers=bearer(tokens))
    apps = (spring_authorization_server, user_service, message_service)
    body = message_of(f"[Spring Boot {boot_line.spring_boot}] user-service /user/message", response, *apps)
    assert_exchanged_for_message_service(body, json.dumps(body))


async def test_article_flow_on_tokensmith(
    boot_line: BootLine,
    tokensmith_example: str,
    spring_services_on_example: tuple[SpringApp, SpringApp],
    http: httpx.AsyncClient,
) -> None:
    """The article's Spring services, unchanged, with tokensmith serving the example file as the authorization
    server: the user's token (login flow) -> user-service -> exchange at tokensmith -> message-service."""
    user_service, message_service = spring_services_on_example
    tokens = await user_token(http, tokensmith_example, EXAMPLE_APP)
    header, claims = jwt_parts(tokens["access_token"])
    assert claims["aud"] == "user-service", claims
    assert header.get("typ") == "JWT", f"the example's access-token-typ-by-audience not applied: {header} {claims}"
    response = await http.get(f"{user_service.url}/user/message", headers=bearer(tokens))
    body = message_of(
        f"[Spring Boot {boot_line.spring_boot}] user-service /user/message (exchange at tokensmith)",
        response,
        user_service,
        message_service,
    )
    assert_exchanged_for_message_service(body, json.dumps(body))
    assert body["typ"] == "JWT", json.dumps(body)


async def test_spring_message_service_accepts_typ_jwt_from_tokensmith(
    boot_line: BootLine,
    tokensmith_for_spring: str,
    spring_message_service_on_tokensmith: SpringApp,
    http: httpx.AsyncClient,
) -> None:
    """With `typ` JWT for its audience, Spring's resource server validates tokensmith's tokens (no exchange)."""
    message_service = spring_message_service_on_tokensmith
    token = await client_credentials_token(
        http, tokensmith_for_spring, "message-reader", "reader-secret", "message.read"
    )
    response = await http.get(f"{message_service.url}/message", headers={"Authorization": f"Bearer {token}"})
    body = message_of(f"[Spring Boot {boot_line.spring_boot}] message-service /message", response, message_service)
    assert body["sub"] == "message-reader", json.dumps(body)
    assert "SCOPE_message.read" in body["authorities"], json.dumps(body)


async def test_spring_message_service_refuses_rfc9068_typ_by_default(
    boot_line: BootLine,
    tokensmith_rfc: str,
    spring_message_service_on_rfc_tokensmith: SpringApp,
    http: httpx.AsyncClient,
) -> None:
    """Why the setting exists: Spring Security refuses `typ` at+jwt (RFC 9068) unless told otherwise."""
    token = await client_credentials_token(http, tokensmith_rfc, "message-reader", "reader-secret", "message.read")
    assert jwt_parts(token)[0].get("typ") == "at+jwt"
    response = await http.get(
        f"{spring_message_service_on_rfc_tokensmith.url}/message", headers={"Authorization": f"Bearer {token}"}
    )
    context = explain(
        f"[Spring Boot {boot_line.spring_boot}] message-service with an at+jwt token",
        response,
        spring_message_service_on_rfc_tokensmith,
    )
    assert response.status_code == 401, context
    challenge = response.headers.get("www-authenticate", "")
    assert 'error="invalid_token"' in challenge, context
    # Boot 3.5 (Nimbus): "JOSE header typ (type) at+jwt not allowed"; Boot 4: "the given typ value needs to be ...".
    assert "typ" in challenge, context


async def exchanges_issued(http: httpx.AsyncClient, issuer: str) -> float:
    """tokensmith's count of token exchanges issued so far (its Prometheus /metrics)."""
    metrics = (await http.get(f"{issuer}/metrics")).text
    pattern = re.compile(
        r'^tokensmith_token_requests_total\{grant_type="urn:ietf:params:oauth:grant-type:token-exchange",'
        r'outcome="issued"\} (\S+)$',
        re.MULTILINE,
    )
    found = pattern.search(metrics)
    return float(found.group(1)) if found else 0.0


async def test_spring_reuses_the_exchanged_token_while_it_is_fresh(
    boot_line: BootLine,
    tokensmith_example: str,
    spring_services_on_example: tuple[SpringApp, SpringApp],
    http: httpx.AsyncClient,
) -> None:
    """Spring caches the exchanged token until 60 s before `expires_in` (a missing one counts as 1 s): with
    tokensmith's `expires_in` a second call to user-service needs no second exchange."""
    user_service, message_service = spring_services_on_example
    tokens = await user_token(http, tokensmith_example, EXAMPLE_APP)
    user = bearer(tokens)
    what = f"[Spring Boot {boot_line.spring_boot}] user-service /user/message"
    message_of(what, await http.get(f"{user_service.url}/user/message", headers=user), user_service, message_service)
    after_first = await exchanges_issued(http, tokensmith_example)
    assert after_first >= 1, "tokensmith's /metrics shows no token exchange at all"
    message_of(what, await http.get(f"{user_service.url}/user/message", headers=user), user_service, message_service)
    assert await exchanges_issued(http, tokensmith_example) == after_first, "Spring exchanged again"
