"""tokensmith's libraries and services against Spring Authorization Server (the article's authorization server).

tokensmith.resource's TokenValidator validates Spring's tokens, tokensmith.client's TokenExchanger exchanges through
it, and tokensmith's user-service and message-service (tokensmith.demo), configured for it, run the article's flow.
What Spring does differently is asserted too, so a change on either side shows up here: the exchanged token's
``aud`` is the requesting client's id whatever ``audience`` asks for, and ``scope`` is a JSON array.
"""

from __future__ import annotations

from collections.abc import AsyncIterator
from contextlib import aclosing

import httpx
import pytest
from tests.interop.spring_apps import SpringApp
from tests.interop.tokensmith_services import message_service_app, serving, user_service_app
from tests.interop.user_tokens import SPRING_AS_APP, bearer, jwt_parts, user_token
from tests.support.article import article_client_properties

from tokensmith.client import OAuth2ClientProperties, TokenExchanger, TokenRequestError
from tokensmith.resource import TokenValidator

# Setup may build the Spring jars from Maven Central on a fresh machine, then start JVMs.
pytestmark = [pytest.mark.interop, pytest.mark.timeout(400)]


def article_registrations(issuer: str) -> OAuth2ClientProperties:
    """The article's spring.security.oauth2.client block (section 4.2), plus user-service's own client."""
    user_service = {
        "provider": "my-auth-server",
        "client-id": "user-service",
        "client-secret": "user-secret",
        "authorization-grant-type": "client_credentials",
        "scope": ["user.read"],
    }
    return OAuth2ClientProperties.model_validate(article_client_properties(issuer, {"user-service": user_service}))


@pytest.fixture
async def exchanger(spring_authorization_server: SpringApp) -> AsyncIterator[TokenExchanger]:
    async with TokenExchanger(article_registrations(spring_authorization_server.url)) as manager:
        yield manager


async def test_validator_and_exchanger_on_spring_authorization_server(
    spring_authorization_server: SpringApp, exchanger: TokenExchanger, http: httpx.AsyncClient
) -> None:
    issuer = spring_authorization_server.url
    tokens = await user_token(http, issuer, SPRING_AS_APP)
    async with (
        aclosing(TokenValidator(issuer=issuer, audience="user-service")) as for_user_service,
        aclosing(TokenValidator(issuer=issuer, audience="message-service")) as for_message_service,
    ):
        user = await for_user_service.validate(tokens["access_token"])
        assert (user.subject, user.audience) == ("baeldung", ("user-service",)), user.claims
        assert "user.read" in user.scopes, user.claims

        exchanged = await exchanger.exchange(tokens["access_token"], registration="my-message-service")
        principal = await for_message_service.validate(exchanged.access_token)
        assert principal.subject == "baeldung", principal.claims
        assert principal.audience == ("message-service",), principal.claims
        # Spring writes scope as a JSON array; the validator reads it like a space-delimited string.
        assert principal.claims["scope"] == ["message.read"], principal.claims
        assert principal.scopes == frozenset({"message.read"}), principal.claims

        service = await exchanger.client_credentials("user-service")
        assert (await for_user_service.validate(service.access_token)).subject == "user-service"


async def test_spring_authorization_server_ignores_the_requested_audience(
    spring_authorization_server: SpringApp, exchanger: TokenExchanger, http: httpx.AsyncClient
) -> None:
    """RFC 8693 lets a client name the target; Spring issues for the requesting client's id regardless."""
    tokens = await user_token(http, spring_authorization_server.url, SPRING_AS_APP)
    exchanged = await exchanger.exchange(
        tokens["access_token"], registration="my-message-service", audience="archive-service"
    )
    claims = jwt_parts(exchanged.access_token)[1]
    assert claims["aud"] in ("message-service", ["message-service"]), claims


async def test_tokensmith_services_on_spring_authorization_server(
    spring_authorization_server: SpringApp, http: httpx.AsyncClient
) -> None:
    """tokensmith's user-service and message-service with Spring as the authorization server: the article's flow."""
    issuer = spring_authorization_server.url
    tokens = await user_token(http, issuer, SPRING_AS_APP)
    async with (
        serving(message_service_app(issuer)) as message_service,
        serving(user_service_app(issuer, f"{message_service}/message")) as user_service,
    ):
        response = await http.get(f"{user_service}/user/message", headers=bearer(tokens))
    failure = (
        f"[tokensmith services on Spring Authorization Server] GET /user/message -> HTTP {response.status_code} "
        f"{response.text}\n--- Spring Authorization Server log ---\n{spring_authorization_server.log_tail(25)}"
    )
    assert response.status_code == 200, failure
    assert response.text == "Hello baeldung, from message-service", failure


async def test_spring_authorization_server_exchanges_only_user_tokens_it_still_holds(
    spring_authorization_server: SpringApp, exchanger: TokenExchanger, http: httpx.AsyncClient
) -> None:
    """Spring looks the subject token up in its own store: a client-credentials token (no user) and an access token
    replaced by a refresh are both refused with invalid_grant. tokensmith.client reports the server's error."""
    issuer = spring_authorization_server.url
    service = await exchanger.client_credentials("user-service")
    with pytest.raises(TokenRequestError) as refused:
        await exchanger.exchange(service.access_token, registration="my-message-service")
    assert (refused.value.status, refused.value.error) == (400, "invalid_grant"), refused.value

    tokens = await user_token(http, issuer, SPRING_AS_APP)
    refreshed = await http.post(
        f"{issuer}/oauth2/token",
        data={"grant_type": "refresh_token", "refresh_token": tokens["refresh_token"]},
        auth=(SPRING_AS_APP.client_id, SPRING_AS_APP.client_secret),
    )
    assert refreshed.status_code == 200, refreshed.text
    with pytest.raises(TokenRequestError) as replaced:
        await exchanger.exchange(tokens["access_token"], registration="my-message-service")
    assert replaced.value.error == "invalid_grant", replaced.value
    renewed = await exchanger.exchange(refreshed.json()["access_token"], registration="my-message-service")
    assert jwt_parts(renewed.access_token)[1]["sub"] == "baeldung"


async def test_delegation_through_spring_authorization_server(
    spring_authorization_server: SpringApp, exchanger: TokenExchanger, http: httpx.AsyncClient
) -> None:
    """RFC 8693 delegation: user-service's own token goes along as actor_token. Spring accepts only an actor token
    it issued; the interop app's token customizer writes the actors into `act` (Spring writes none by itself), and
    tokensmith.resource reads them as the principal's actor chain, the current actor first. Exchanged again with
    an actor, the earlier actor is nested inside the new one."""
    issuer = spring_authorization_server.url
    tokens = await user_token(http, issuer, SPRING_AS_APP)
    actor = await exchanger.client_credentials("user-service")
    delegated = await exchanger.exchange(
        tokens["access_token"], registration="my-message-service", actor_token=actor.access_token
    )
    async with aclosing(TokenValidator(issuer=issuer, audience="message-service")) as for_message_service:
        principal = await for_message_service.validate(delegated.access_token)
        assert principal.subject == "baeldung", principal.claims
        assert [(link.subject, link.issuer) for link in principal.act] == [("user-service", issuer)], principal.claims

        # A second hop: the delegated token is the subject now, and Spring keeps its actor under the new one.
        again = await exchanger.exchange(
            delegated.access_token, registration="my-message-service", actor_token=actor.access_token
        )
        chained = await for_message_service.validate(again.access_token)
        assert chained.subject == "baeldung", chained.claims
        assert [link.subject for link in chained.act] == ["user-service", "user-service"], chained.claims
        assert chained.claims["act"]["act"] == {"iss": issuer, "sub": "user-service"}, chained.claims

    # Without an actor token the same exchange stays impersonation: no act claim.
    plain = await exchanger.exchange(tokens["access_token"], registration="my-message-service")
    assert "act" not in jwt_parts(plain.access_token)[1]

    # An actor token Spring did not issue is refused, and tokensmith.client reports Spring's error.
    with pytest.raises(TokenRequestError) as refused:
        await exchanger.exchange(tokens["access_token"], registration="my-message-service", actor_token="not-a-token")
    assert (refused.value.status, refused.value.error) == (400, "invalid_grant"), refused.value
