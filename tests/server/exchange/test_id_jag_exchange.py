"""The identity provider's side of ID-JAG: a client exchanges the ID token it was issued for an Identity
Assertion JWT Authorization Grant aimed at another authorization server (draft section 4.3)."""

from __future__ import annotations

from datetime import timedelta
from typing import Any

import pytest
from tests.server.exchange.fakes import (
    ISSUER,
    ContextFactory,
    FakeStore,
    client,
    exchange_grant,
    exchange_request,
    fake_store,
    user_token,
)

from tokensmith import jose
from tokensmith.config.exchange import ACCESS_TOKEN_TYPE, ID_TOKEN_TYPE
from tokensmith.config.id_jag import ID_JAG_TOKEN_TYPE
from tokensmith.errors import OAuthError
from tokensmith.server.core.context import ServerContext
from tokensmith.server.core.grants.base import TokenRequest
from tokensmith.server.core.tokens import IssuedToken

CHAT = "https://chat.example"
CHAT_API = "https://api.chat.example/"
POLICY: dict[str, Any] = {
    "id-jag": {
        "audiences": {
            CHAT: {"client-id": "wiki-at-chat", "scopes": ["chat.read", "chat.history"], "resources": [CHAT_API]}
        },
        "time-to-live": "5m",
    }
}


@pytest.fixture
async def ctx(context_factory: ContextFactory) -> ServerContext:
    return await context_factory(POLICY)


async def id_token(ctx: ServerContext, client_id: str = "message-service", ttl: float = 600) -> IssuedToken:
    """The user's ID token, as the login at this server gave it to ``client_id``."""
    return await ctx.tokens.issue_id_token(
        subject="baeldung",
        client_id=client_id,
        ttl=timedelta(seconds=ttl),
        nonce="n-0S6_WzA2Mj",
        auth_time=ctx.clock() - timedelta(minutes=1),
        extra_claims={"amr": ["pwd"]},
    )


def id_jag_request(subject_token: str, **params: str | list[str]) -> TokenRequest:
    values: dict[str, str | list[str]] = {"requested_token_type": ID_JAG_TOKEN_TYPE, "audience": CHAT}
    values.update(params)
    return exchange_request(subject_token, ID_TOKEN_TYPE, **values)


async def refusal(ctx: ServerContext, request: TokenRequest, client_id: str = "message-service") -> OAuthError:
    with pytest.raises(OAuthError) as caught:
        await exchange_grant(request, client(ctx, client_id), ctx)
    return caught.value


async def test_an_id_token_becomes_an_id_jag_for_the_other_server(ctx: ServerContext) -> None:
    subject = await id_token(ctx)
    response = await exchange_grant(
        id_jag_request(subject.token, resource=CHAT_API, scope="chat.read chat.history"), client(ctx), ctx
    )
    body = response.to_dict()
    assert body["issued_token_type"] == ID_JAG_TOKEN_TYPE
    assert body["token_type"] == "N_A"
    assert body["expires_in"] == 300
    assert "refresh_token" not in body
    assert "scope" not in body  # as requested
    verified = ctx.keys.verify(response.access_token)
    assert jose.parse(response.access_token).header["typ"] == "oauth-id-jag+jwt"
    claims = verified.claims
    assert claims["iss"] == ISSUER
    assert claims["sub"] == "baeldung"
    assert claims["aud"] == CHAT
    assert claims["client_id"] == "wiki-at-chat"  # the client's id at the other server, from the policy
    assert claims["resource"] == CHAT_API
    assert claims["scope"] == "chat.read chat.history"
    assert claims["exp"] - claims["iat"] == 300
    assert claims["auth_time"] == subject.claims["auth_time"]
    assert claims["amr"] == ["pwd"]
    assert claims["jti"]
    assert claims["jti"] != subject.jti
    for leaked in ("nonce", "azp", "at_hash"):
        assert leaked not in claims
    event = fake_store(ctx).audit[-1]
    assert (event.event, event.outcome, event.subject, event.audience) == (
        "token_exchange",
        "granted",
        "baeldung",
        (CHAT,),
    )
    assert event.details["issued_token_type"] == ID_JAG_TOKEN_TYPE
    assert event.details["id_jag_client_id"] == "wiki-at-chat"
    assert event.details["subject_jti"] == subject.jti


async def test_without_scope_the_response_says_what_was_granted(ctx: ServerContext) -> None:
    body = (await exchange_grant(id_jag_request((await id_token(ctx)).token), client(ctx), ctx)).to_dict()
    assert body["scope"] == "chat.read chat.history"


async def test_the_grant_never_outlives_the_id_token(ctx: ServerContext) -> None:
    response = await exchange_grant(id_jag_request((await id_token(ctx, ttl=60)).token), client(ctx), ctx)
    assert response.expires_in == 60


async def test_an_id_token_of_another_client_is_refused(ctx: ServerContext) -> None:
    error = await refusal(ctx, id_jag_request((await id_token(ctx, client_id="messaging-client-oidc")).token))
    assert error.error == "invalid_request"
    assert "issued to another client" in (error.description or "")


async def test_only_an_id_token_is_exchanged_for_an_id_jag(ctx: ServerContext) -> None:
    access = await user_token(ctx, audience=("message-service",))
    error = await refusal(
        ctx, exchange_request(access.token, ACCESS_TOKEN_TYPE, requested_token_type=ID_JAG_TOKEN_TYPE, audience=CHAT)
    )
    assert error.error == "invalid_request"
    assert ID_TOKEN_TYPE in (error.description or "")


async def test_an_audience_the_policy_does_not_name_is_invalid_target_and_audited(ctx: ServerContext) -> None:
    error = await refusal(ctx, id_jag_request((await id_token(ctx)).token, audience="https://evil.example"))
    assert error.error == "invalid_target"
    event = fake_store(ctx).audit[-1]
    assert event.outcome == "refused"
    assert event.reason == f"invalid_target: {error.description}"
    assert event.details["requested_token_type"] == ID_JAG_TOKEN_TYPE


async def test_an_actor_token_is_not_accepted(ctx: ServerContext) -> None:
    subject = await id_token(ctx)
    error = await refusal(ctx, id_jag_request(subject.token, actor_token=subject.token, actor_token_type=ID_TOKEN_TYPE))
    assert error.error == "invalid_request"
    assert "actor_token" in (error.description or "")


async def test_a_client_without_an_id_jag_policy_is_refused(context_factory: ContextFactory) -> None:
    ctx = await context_factory()
    error = await refusal(ctx, id_jag_request((await id_token(ctx)).token))
    assert error.error == "invalid_request"
    assert "not allowed for this client" in (error.description or "")


async def test_discovery_advertises_the_id_jag_token_type(ctx: ServerContext) -> None:
    metadata = ctx.metadata()
    assert metadata["identity_chaining_requested_token_types_supported"] == [ID_JAG_TOKEN_TYPE]
    assert ID_JAG_TOKEN_TYPE in metadata["token_exchange_requested_token_types_supported"]


async def test_no_id_jag_advertised_without_a_policy(context_factory: ContextFactory, store: FakeStore) -> None:
    assert "identity_chaining_requested_token_types_supported" not in (await context_factory()).metadata()
