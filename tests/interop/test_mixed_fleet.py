"""Mixed fleets behind tokensmith: a Spring Boot service calling a tokensmith one, and the other way round.

The user's token comes from the login flow at tokensmith; each user-service exchanges it at tokensmith (Spring's
TokenExchangeOAuth2AuthorizedClientProvider or tokensmith.client's TokenExchanger) for a message-service token.
"""

from __future__ import annotations

import json

import httpx
import pytest
from tests.interop.expectations import assert_exchanged_for_message_service, explain, message_of
from tests.interop.spring_apps import BootLine, SpringApp
from tests.interop.tokensmith_services import serving, user_service_app
from tests.interop.user_tokens import TOKENSMITH_APP, user_token

# Setup may build the Spring jars from Maven Central on a fresh machine, then start JVMs.
pytestmark = [pytest.mark.interop, pytest.mark.timeout(400)]


async def test_spring_user_service_calls_tokensmith_message_service(
    boot_line: BootLine,
    tokensmith_for_spring: str,
    spring_user_service_to_tokensmith: SpringApp,
    http: httpx.AsyncClient,
) -> None:
    tokens = await user_token(http, tokensmith_for_spring, TOKENSMITH_APP)
    response = await http.get(
        f"{spring_user_service_to_tokensmith.url}/user/message",
        headers={"Authorization": f"Bearer {tokens['access_token']}"},
    )
    context = explain(
        f"[Spring Boot {boot_line.spring_boot} user-service -> tokensmith message-service] /user/message",
        response,
        spring_user_service_to_tokensmith,
    )
    assert response.status_code == 200, context
    assert response.text == "Hello baeldung, from message-service", context


async def test_tokensmith_user_service_calls_spring_message_service(
    boot_line: BootLine,
    tokensmith_for_spring: str,
    spring_services_on_tokensmith: tuple[SpringApp, SpringApp],
    http: httpx.AsyncClient,
) -> None:
    _, spring_message_service = spring_services_on_tokensmith
    tokens = await user_token(http, tokensmith_for_spring, TOKENSMITH_APP)
    async with serving(user_service_app(tokensmith_for_spring, f"{spring_message_service.url}/message")) as url:
        response = await http.get(f"{url}/user/message", headers={"Authorization": f"Bearer {tokens['access_token']}"})
    body = message_of(
        f"[tokensmith user-service -> Spring Boot {boot_line.spring_boot} message-service] /user/message",
        response,
        spring_message_service,
    )
    assert_exchanged_for_message_service(body, json.dumps(body))


async def test_spring_message_service_reads_the_act_claim_of_a_delegated_token(
    boot_line: BootLine,
    tokensmith_for_spring: str,
    spring_services_on_tokensmith: tuple[SpringApp, SpringApp],
    http: httpx.AsyncClient,
) -> None:
    """Delegation (RFC 8693 `act`): tokensmith's user-service sends its own token as the actor; Spring accepts the
    result and sees who acts for the user."""
    _, spring_message_service = spring_services_on_tokensmith
    tokens = await user_token(http, tokensmith_for_spring, TOKENSMITH_APP)
    async with serving(user_service_app(tokensmith_for_spring, f"{spring_message_service.url}/message")) as url:
        response = await http.get(
            f"{url}/user/message?mode=delegation", headers={"Authorization": f"Bearer {tokens['access_token']}"}
        )
    body = message_of(
        f"[tokensmith user-service (delegation) -> Spring Boot {boot_line.spring_boot} message-service] /user/message",
        response,
        spring_message_service,
    )
    assert_exchanged_for_message_service(body, json.dumps(body))
    assert body["act"].get("sub") == "user-service", json.dumps(body)
