"""Impersonation (RFC 8693 1.1): no actor token; the new token stands for the subject alone."""

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

from tokensmith.config.exchange import ACCESS_TOKEN_TYPE, JWT_TOKEN_TYPE
from tokensmith.errors import OAuthError
from tokensmith.server.core.context import ServerContext
from tokensmith.server.core.grants.base import TokenRequest


async def exchanged_claims(ctx: ServerContext, request: TokenRequest) -> tuple[dict[str, Any], dict[str, Any]]:
    response = await exchange_grant(request, client(ctx), ctx)
    return response.to_dict(), ctx.keys.verify(response.access_token).claims


async def test_the_article_flow_keeps_sub_and_aims_at_message_service(ctx: ServerContext) -> None:
    # user-service received the user's token (aud user-service) and exchanges it as client message-service;
    # Spring's client sends subject_token_type :jwt, requested_token_type :access_token, the registration's scope.
    subject = await user_token(ctx)
    body, claims = await exchanged_claims(
        ctx,
        exchange_request(subject.token, JWT_TOKEN_TYPE, requested_token_type=ACCESS_TOKEN_TYPE, scope="message.read"),
    )
    assert claims["sub"] == "baeldung"
    assert claims["aud"] == "message-service"
    assert claims["scope"] == "message.read"
    assert claims["iss"] == ISSUER
    assert claims["client_id"] == "message-service"
    assert "act" not in claims
    assert body["issued_token_type"] == ACCESS_TOKEN_TYPE
    assert body["token_type"] == "Bearer"
    assert body["expires_in"] > 0
    assert "scope" not in body  # identical to the request: RFC 8693 2.2.1 makes it optional


async def test_without_scope_the_client_gets_its_registered_scopes_minus_openid(ctx: ServerContext) -> None:
    subject = await user_token(ctx)
    body, claims = await exchanged_claims(ctx, exchange_request(subject.token))
    assert claims["scope"] == "message.read"
    assert body["scope"] == "message.read"  # the request named none: the response says what was granted


async def test_response_includes_scope_when_it_differs_from_the_request(context_factory: ContextFactory) -> None:
    ctx = await context_factory({"excess-scope": "reduce"})
    subject = await user_token(ctx)
    body, claims = await exchanged_claims(ctx, exchange_request(subject.token, scope="message.read admin"))
    assert body["scope"] == "message.read"
    assert claims["scope"] == "message.read"


async def test_impersonation_keeps_the_users_claims_but_not_the_subject_tokens_own(ctx: ServerContext) -> None:
    subject = await user_token(ctx, extra_claims={"email": "b@example.com", "auth_time": 1, "may_act": {"sub": "x"}})
    _, claims = await exchanged_claims(ctx, exchange_request(subject.token))
    assert claims["email"] == "b@example.com"
    assert claims["auth_time"] == 1
    assert "may_act" not in claims
    assert claims["jti"] != subject.jti


async def test_the_exchanged_token_never_outlives_the_subject_token(ctx: ServerContext) -> None:
    subject = await user_token(ctx, ttl=timedelta(seconds=40))
    body, claims = await exchanged_claims(ctx, exchange_request(subject.token))
    assert claims["exp"] == subject.claims["exp"]
    assert body["expires_in"] == 40


async def test_one_exchange_writes_its_token_and_its_audit_event_and_reads_only_the_revocation_state(
    ctx: ServerContext,
) -> None:
    subject = await user_token(ctx)
    store: FakeStore = fake_store(ctx)
    store.calls.clear()
    await exchange_grant(exchange_request(subject.token), client(ctx), ctx)
    # The first exchange loads the revoked jtis (revocations.py); both writes are done before the grant returns.
    assert store.calls == ["list_revoked_tokens", "record_issued_token", "add_audit_event"]
    store.calls.clear()
    await exchange_grant(exchange_request(subject.token), client(ctx), ctx)
    # Later ones check revocation in memory: no read, the two writes.
    assert store.calls == ["record_issued_token", "add_audit_event"]


async def test_lineage_records_the_subject_tokens_jti(ctx: ServerContext) -> None:
    subject = await user_token(ctx)
    _, claims = await exchanged_claims(ctx, exchange_request(subject.token))
    record = fake_store(ctx).tokens[claims["jti"]]
    assert record.parent_jti == subject.jti
    assert record.actor_jti is None


async def test_a_client_not_registered_for_token_exchange_is_unauthorized_client(ctx: ServerContext) -> None:
    subject = await user_token(ctx)
    with pytest.raises(OAuthError) as caught:
        await exchange_grant(exchange_request(subject.token), client(ctx, "messaging-client-oidc"), ctx)
    assert caught.value.error == "unauthorized_client"


async def test_a_public_client_may_not_exchange(ctx: ServerContext) -> None:
    subject = await user_token(ctx)
    with pytest.raises(OAuthError) as caught:
        await exchange_grant(exchange_request(subject.token), client(ctx, method="none"), ctx)
    assert caught.value.error == "unauthorized_client"
