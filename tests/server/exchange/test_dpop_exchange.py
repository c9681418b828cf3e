"""DPoP through the exchange (RFC 9449 with RFC 8693): a bound subject token stays bound, and delegation keeps
both `act` and `cnf` (docs/exchange-policy.md, "DPoP")."""

from __future__ import annotations

import time
from dataclasses import replace

import pytest
from joserfc.jwk import ECKey
from tests.server.exchange.fakes import ContextFactory, client, exchange_grant, exchange_request, user_token

from tokensmith import jose
from tokensmith.config.exchange import ACCESS_TOKEN_TYPE
from tokensmith.errors import OAuthError
from tokensmith.server.core.grants.base import TokenRequest

HOLDER = ECKey.generate_key("P-256")  # the client app's key, to which the user's token is bound
SERVICE = ECKey.generate_key("P-256")  # message-service's own key


def with_proof(request: TokenRequest, key: ECKey) -> TokenRequest:
    proof = jose.sign_proof(key, alg="ES256", method="POST", uri="http://localhost:9001/oauth2/token")
    checked = jose.check_proof(
        proof,
        method="POST",
        uri="http://localhost:9001/oauth2/token",
        algorithms=["ES256"],
        now=time.time(),
        max_age=60,
        clock_skew=5,
    )
    return replace(request, dpop=checked)


async def test_a_bound_subject_token_needs_its_key_or_the_policy(context_factory: ContextFactory) -> None:
    ctx = await context_factory()
    bound = await user_token(ctx, extra_claims={"cnf": {"jkt": HOLDER.thumbprint()}})
    request = exchange_request(bound.token)
    for refused in (request, with_proof(request, SERVICE)):
        with pytest.raises(OAuthError) as caught:
            await exchange_grant(refused, client(ctx), ctx)
        assert caught.value.error == "invalid_dpop_proof"
    response = await exchange_grant(with_proof(request, HOLDER), client(ctx), ctx)
    assert response.token_type == "DPoP"
    assert ctx.keys.verify(response.access_token).claims["cnf"] == {"jkt": HOLDER.thumbprint()}


async def test_a_named_client_presents_it_with_its_own_proof_and_delegation_keeps_act(
    context_factory: ContextFactory,
) -> None:
    ctx = await context_factory(
        {"delegation": True, "dpop": {"bound-subject-token-clients": ["messaging-client-oidc"]}}
    )
    bound = await user_token(ctx, extra_claims={"cnf": {"jkt": HOLDER.thumbprint()}})
    actor = await user_token(ctx, subject="user-service", client_id="user-service", scope=(), audience=(ctx.issuer,))
    request = exchange_request(bound.token, actor_token=actor.token, actor_token_type=ACCESS_TOKEN_TYPE)
    with pytest.raises(OAuthError) as caught:  # still no bearer token from a bound one
        await exchange_grant(request, client(ctx), ctx)
    assert caught.value.error == "invalid_dpop_proof"
    response = await exchange_grant(with_proof(request, SERVICE), client(ctx), ctx)
    claims = ctx.keys.verify(response.access_token).claims
    assert claims["cnf"] == {"jkt": SERVICE.thumbprint()}
    assert claims["act"]["sub"] == "user-service"
    assert response.token_type == "DPoP"


async def test_bearer_from_bound_only_when_the_policy_says_so(context_factory: ContextFactory) -> None:
    ctx = await context_factory(
        {"dpop": {"bound-subject-token-clients": ["messaging-client-oidc"], "allow-bearer-from-bound": True}}
    )
    bound = await user_token(ctx, extra_claims={"cnf": {"jkt": HOLDER.thumbprint()}})
    response = await exchange_grant(exchange_request(bound.token), client(ctx), ctx)
    assert response.token_type == "Bearer"
    assert "cnf" not in ctx.keys.verify(response.access_token).claims
