"""Mixed fleets behind tokensmith: a Spring Boot service calling a tokensmith one, and the other way round.

The user's token comes from the login flow at tokensmith; each user-service exchanges it at tokensmith (Spring's
TokenExchangeOAuth2AuthorizedClientProvider or tokensmith.client's TokenExchanger) for a message-service token.
Impersonation runs on examples/authorization-server.yaml as shipped; delegation needs interop.yaml's clients.
"""

from __future__ import annotations

import json

import httpx
import pytest
from tests.interop.expectations import assert_exchanged_for_message_service, explain, message_of
from tests.interop.spring_apps import BootLine, SpringApp
from tests.interop.tokensmith_services import serving, user_service_app
from tests.interop.user_tokens import EXAMPLE_APP, TOKENSMITH_APP, LoginClient, bearer, user_token

# Setup may build the Spring jars from Maven Central on a fresh machine, then start JVMs.
pytestmark = [pytest.mark.interop, pytest.mark.timeout(400)]


async def test_spring_user_service_calls_tokensmith_message_service(
    boot_line: BootLine,
    tokensmith_example: str,
    spring_user_service_to_tokensmith: SpringApp,
    http: httpx.AsyncClient,
) -> None:
    tokens = await user_token(http, tokensmith_example, EXAMPLE_APP)
    response = await http.get(
        f"{spring_user_service_to_tokensmith.url}/user/message",
        headers=bearer(tokens),
    )
    context = explain(
        f"[Spring Boot {boot_line.spring_boot} user-service -> tokensmith message-service] /user/message",
        response,
        spring_user_service_to_tokensmith,
    )
    assert response.status_code == 200, context
    assert response.text == "Hello baeldung, from message-service", context


async def through_tokensmith_user_service(
    http: httpx.AsyncClient, issuer: str, login: LoginClient, spring_message_service: SpringApp, query: str = ""
) -> httpx.Response:
    """``GET /user/message{query}`` with the user's token (login at ``issuer`` through ``login``) at tokensmith's
    user-service, served for this one call and configured to call ``spring_message_service``."""
    tokens = await user_token(http, issuer, login)
    async with serving(user_service_app(issuer, f"{spring_message_service.url}/message")) as url:
        return await http.get(f"{url}/user/message{query}", headers=bearer(tokens))


async def test_tokensmith_user_service_calls_spring_message_service(
    boot_line: BootLine,
    tokensmith_example: str,
    spring_services_on_example: tuple[SpringApp, SpringApp],
    http: httpx.AsyncClient,
) -> None:
    _, spring_message_service = spring_services_on_example
    response = await through_tokensmith_user_service(http, tokensmith_example, EXAMPLE_APP, spring_message_service)
    body = message_of(
        f"[tokensmith user-service -> Spring Boot {boot_line.spring_boot} message-service] /user/message",
        response,
        spring_message_service,
    )
    assert_exchanged_for_message_service(body, json.dumps(body))


async def test_spring_message_service_reads_the_act_claim_of_a_delegated_token(
    boot_line: BootLine,
    tokensmith_for_spring: str,
    spring_message_service_on_tokensmith: SpringApp,
    http: httpx.AsyncClient,
) -> None:
    """Delegation (RFC 8693 `act`): tokensmith's user-service sends its own token as the actor; Spring accepts the
    result and sees who acts for the user."""
    spring_message_service = spring_message_service_on_tokensmith
    response = await through_tokensmith_user_service(
        http, tokensmith_for_spring, TOKENSMITH_APP, spring_message_service, "?mode=delegation"
    )
    body = message_of(
        f"[tokensmith user-service (delegation) -> Spring Boot {boot_line.spring_boot} message-service] /user/message",
        response,
        spring_message_service,
    )
    assert_exchanged_for_message_service(body, json.dumps(body))
    assert body["act"].get("sub") == "user-service", json.dumps(body)
