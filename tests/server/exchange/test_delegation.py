"""Delegation (RFC 8693 1.1, 4.1, 4.4): an actor token; the new token names the actor in `act`."""

from __future__ import annotations

from datetime import timedelta
from typing import Any

import pytest
from tests.server.exchange.fakes import (
    ISSUER,
    ContextFactory,
    client,
    exchange_grant,
    exchange_request,
    fake_store,
    user_token,
)

from tokensmith.config.exchange import ACCESS_TOKEN_TYPE
from tokensmith.errors import OAuthError
from tokensmith.server.core.context import ServerContext
from tokensmith.server.core.grants.base import TokenRequest

DELEGATION = {"delegation": True}


async def service_token(ctx: ServerContext, name: str = "user-service") -> str:
    token = await user_token(ctx, subject=name, client_id=name, scope=(), audience=(ISSUER,))
    return token.token


async def claims_of(ctx: ServerContext, request: TokenRequest) -> dict[str, Any]:
    response = await exchange_grant(request, client(ctx), ctx)
    return ctx.keys.verify(response.access_token).claims


async def refusal(ctx: ServerContext, request: TokenRequest) -> OAuthError:
    with pytest.raises(OAuthError) as caught:
        await exchange_grant(request, client(ctx), ctx)
    return caught.value


def delegated(subject: str, actor: str) -> TokenRequest:
    return exchange_request(subject, actor_token=actor, actor_token_type=ACCESS_TOKEN_TYPE)


async def test_delegation_adds_act_with_the_actors_sub_and_iss(context_factory: ContextFactory) -> None:
    ctx = await context_factory(DELEGATION)
    subject = await user_token(ctx)
    claims = await claims_of(ctx, delegated(subject.token, await service_token(ctx)))
    assert claims["sub"] == "baeldung"
    assert claims["act"] == {"sub": "user-service", "iss": ISSUER}


async def test_delegation_records_the_actor_tokens_jti_in_the_lineage(context_factory: ContextFactory) -> None:
    ctx = await context_factory(DELEGATION)
    subject, actor = await user_token(ctx), await user_token(ctx, subject="svc", client_id="svc")
    claims = await claims_of(ctx, delegated(subject.token, actor.token))
    record = fake_store(ctx).tokens[claims["jti"]]
    assert (record.parent_jti, record.actor_jti) == (subject.jti, actor.jti)


async def test_a_chain_nests_the_previous_act_inside_the_current_one(context_factory: ContextFactory) -> None:
    ctx = await context_factory(DELEGATION)
    subject = await user_token(ctx)
    first = await exchange_grant(delegated(subject.token, await service_token(ctx, "user-service")), client(ctx), ctx)
    claims = await claims_of(ctx, delegated(first.access_token, await service_token(ctx, "message-service")))
    assert claims["act"] == {
        "sub": "message-service",
        "iss": ISSUER,
        "act": {"sub": "user-service", "iss": ISSUER},
    }


async def test_a_chain_past_the_maximum_depth_is_invalid_request(context_factory: ContextFactory) -> None:
    ctx = await context_factory({"delegation": True, "max-delegation-depth": 1})
    subject = await user_token(ctx)
    first = await exchange_grant(delegated(subject.token, await service_token(ctx, "a")), client(ctx), ctx)
    error = await refusal(ctx, delegated(first.access_token, await service_token(ctx, "b")))
    assert error.error == "invalid_request"
    assert "chain too deep" in error.description


async def test_impersonation_keeps_an_existing_act_chain(context_factory: ContextFactory) -> None:
    ctx = await context_factory({"delegation": True, "impersonation": True})
    subject = await user_token(ctx)
    first = await exchange_grant(delegated(subject.token, await service_token(ctx)), client(ctx), ctx)
    claims = await claims_of(ctx, exchange_request(first.access_token))
    assert claims["act"] == {"sub": "user-service", "iss": ISSUER}


async def test_may_act_naming_the_actor_allows_delegation(context_factory: ContextFactory) -> None:
    ctx = await context_factory(DELEGATION)
    subject = await user_token(ctx, extra_claims={"may_act": {"sub": "user-service", "iss": ISSUER}})
    claims = await claims_of(ctx, delegated(subject.token, await service_token(ctx)))
    assert claims["act"]["sub"] == "user-service"
    assert "may_act" not in claims


async def test_may_act_naming_another_party_is_invalid_grant(context_factory: ContextFactory) -> None:
    ctx = await context_factory(DELEGATION)
    subject = await user_token(ctx, extra_claims={"may_act": {"sub": "billing-service"}})
    error = await refusal(ctx, delegated(subject.token, await service_token(ctx)))
    assert error.error == "invalid_grant"
    assert "may_act" in error.description


async def test_may_act_naming_the_same_sub_at_another_issuer_is_invalid_grant(context_factory: ContextFactory) -> None:
    ctx = await context_factory(DELEGATION)
    subject = await user_token(ctx, extra_claims={"may_act": {"sub": "user-service", "iss": "https://idp.example"}})
    error = await refusal(ctx, delegated(subject.token, await service_token(ctx)))
    assert error.error == "invalid_grant"


async def test_a_malformed_may_act_is_invalid_grant(context_factory: ContextFactory) -> None:
    ctx = await context_factory(DELEGATION)
    subject = await user_token(ctx, extra_claims={"may_act": ["user-service"]})
    error = await refusal(ctx, delegated(subject.token, await service_token(ctx)))
    assert error.error == "invalid_grant"


async def test_delegation_refused_by_policy_is_invalid_request(ctx: ServerContext) -> None:
    subject = await user_token(ctx)
    error = await refusal(ctx, delegated(subject.token, await service_token(ctx)))
    assert error.error == "invalid_request"
    assert "delegation" in error.description


async def test_impersonation_refused_by_policy_is_unauthorized_client(context_factory: ContextFactory) -> None:
    ctx = await context_factory({"delegation": True, "impersonation": False})
    subject = await user_token(ctx)
    error = await refusal(ctx, exchange_request(subject.token))
    assert error.error == "unauthorized_client"


async def test_an_invalid_actor_token_is_invalid_request(context_factory: ContextFactory) -> None:
    ctx = await context_factory(DELEGATION)
    subject = await user_token(ctx)
    error = await refusal(ctx, delegated(subject.token, "not.a.jwt"))
    assert error.error == "invalid_request"
    assert error.description.startswith("actor_token")


async def test_the_delegated_token_never_outlives_the_actor_token(context_factory: ContextFactory) -> None:
    ctx = await context_factory(DELEGATION)
    subject = await user_token(ctx)
    actor = await user_token(ctx, subject="svc", client_id="svc", ttl=timedelta(seconds=20))
    response = await exchange_grant(delegated(subject.token, actor.token), client(ctx), ctx)
    assert response.expires_in == 20
