"""Audience (RFC 8693 2.1, RFC 8707) and scope: decided by the policy, never by the requester alone."""

from __future__ import annotations

from datetime import timedelta
from typing import Any

import pytest
from tests.server.exchange.fakes import ContextFactory, client, exchange_grant, exchange_request, user_token

from tokensmith.config.exchange import ID_TOKEN_TYPE, JWT_TOKEN_TYPE
from tokensmith.errors import OAuthError
from tokensmith.server.core.context import ServerContext
from tokensmith.server.core.grants.base import TokenRequest

# message-service may ask for tokens aimed at two APIs, each with its own scopes.
TWO_APIS: dict[str, Any] = {
    "audiences": {
        "billing": {"scopes": ["invoice.read", "invoice.write"], "default-scopes": ["invoice.read"]},
        "https://api.example.com/reports": {"scopes": ["report.read", "invoice.read"]},
    }
}


async def granted(ctx: ServerContext, request: TokenRequest) -> tuple[dict[str, Any], dict[str, Any]]:
    response = await exchange_grant(request, client(ctx), ctx)
    return response.to_dict(), ctx.keys.verify(response.access_token).claims


async def refusal(ctx: ServerContext, request: TokenRequest) -> OAuthError:
    with pytest.raises(OAuthError) as caught:
        await exchange_grant(request, client(ctx), ctx)
    return caught.value


async def test_without_audience_or_resource_aud_is_the_clients_id(ctx: ServerContext) -> None:
    subject = await user_token(ctx)
    _, claims = await granted(ctx, exchange_request(subject.token))
    assert claims["aud"] == "message-service"


async def test_default_audience_can_be_configured(context_factory: ContextFactory) -> None:
    ctx = await context_factory({"default-audience": ["messages-api"]})
    subject = await user_token(ctx)
    _, claims = await granted(ctx, exchange_request(subject.token))
    assert (claims["aud"], claims["scope"]) == ("messages-api", "message.read")


async def test_an_allowed_audience_becomes_aud_with_its_default_scopes(context_factory: ContextFactory) -> None:
    ctx = await context_factory(TWO_APIS)
    subject = await user_token(ctx)
    body, claims = await granted(ctx, exchange_request(subject.token, audience="billing"))
    assert (claims["aud"], claims["scope"], body["scope"]) == ("billing", "invoice.read", "invoice.read")


async def test_a_resource_uri_becomes_aud(context_factory: ContextFactory) -> None:
    ctx = await context_factory(TWO_APIS)
    subject = await user_token(ctx)
    _, claims = await granted(ctx, exchange_request(subject.token, resource="https://api.example.com/reports"))
    assert claims["aud"] == "https://api.example.com/reports"
    assert claims["scope"] == "report.read invoice.read"  # no default-scopes: everything allowed there


async def test_several_targets_get_only_the_scopes_every_one_allows(context_factory: ContextFactory) -> None:
    ctx = await context_factory(TWO_APIS)
    subject = await user_token(ctx)
    _, claims = await granted(
        ctx, exchange_request(subject.token, audience="billing", resource="https://api.example.com/reports")
    )
    assert claims["aud"] == ["billing", "https://api.example.com/reports"]
    assert claims["scope"] == "invoice.read"


@pytest.mark.parametrize("params", [{"audience": "admin-api"}, {"resource": "https://evil.example/"}])
async def test_a_target_the_policy_does_not_list_is_invalid_target(
    context_factory: ContextFactory, params: dict[str, str]
) -> None:
    ctx = await context_factory(TWO_APIS)
    subject = await user_token(ctx)
    error = await refusal(ctx, exchange_request(subject.token, **params))
    assert error.error == "invalid_target"
    assert next(iter(params.values())) in error.description


async def test_with_no_policy_only_the_default_audience_is_allowed(ctx: ServerContext) -> None:
    subject = await user_token(ctx)
    error = await refusal(ctx, exchange_request(subject.token, audience="user-service"))
    assert error.error == "invalid_target"


async def test_scope_escalation_is_invalid_scope(ctx: ServerContext) -> None:
    subject = await user_token(ctx)
    error = await refusal(ctx, exchange_request(subject.token, scope="message.read message.write"))
    assert error.error == "invalid_scope"
    assert "message.write" in error.description


async def test_openid_is_not_granted_to_an_exchanged_access_token(ctx: ServerContext) -> None:
    subject = await user_token(ctx)
    error = await refusal(ctx, exchange_request(subject.token, scope="openid"))
    assert error.error == "invalid_scope"


async def test_excess_scope_can_be_reduced_per_client(context_factory: ContextFactory) -> None:
    ctx = await context_factory({"excess-scope": "reduce"})
    subject = await user_token(ctx)
    body, claims = await granted(ctx, exchange_request(subject.token, scope="message.write message.read"))
    assert (claims["scope"], body["scope"]) == ("message.read", "message.read")


async def test_reduction_to_nothing_is_still_invalid_scope(context_factory: ContextFactory) -> None:
    ctx = await context_factory({"excess-scope": "reduce"})
    subject = await user_token(ctx)
    error = await refusal(ctx, exchange_request(subject.token, scope="message.write"))
    assert error.error == "invalid_scope"


async def test_strict_downscoping_refuses_scopes_the_subject_token_lacks(context_factory: ContextFactory) -> None:
    ctx = await context_factory({"scope-backing": "strict"})
    error = await refusal(ctx, exchange_request((await user_token(ctx)).token, scope="message.read"))
    assert error.error == "invalid_scope"
    assert "not backed" in error.description
    backed = await user_token(ctx, scope=("message.read", "user.read"))
    _, claims = await granted(ctx, exchange_request(backed.token, scope="message.read"))
    assert claims["scope"] == "message.read"


async def test_strict_downscoping_without_requested_scope_grants_only_what_is_backed(
    context_factory: ContextFactory,
) -> None:
    ctx = await context_factory({"scope-backing": "strict"})
    body, claims = await granted(ctx, exchange_request((await user_token(ctx)).token))
    assert "scope" not in claims
    assert "scope" not in body


async def test_a_scope_mapping_backs_a_scope_through_another(context_factory: ContextFactory) -> None:
    ctx = await context_factory({"scope-backing": "mapping", "scope-mappings": {"user.read": ["message.read"]}})
    _, claims = await granted(ctx, exchange_request((await user_token(ctx)).token, scope="message.read"))
    assert claims["scope"] == "message.read"
    unbacked = await user_token(ctx, scope=("profile",))
    error = await refusal(ctx, exchange_request(unbacked.token, scope="message.read"))
    assert error.error == "invalid_scope"


async def test_the_jwt_token_type_may_be_requested(ctx: ServerContext) -> None:
    body, _ = await granted(ctx, exchange_request((await user_token(ctx)).token, requested_token_type=JWT_TOKEN_TYPE))
    assert body["issued_token_type"] == JWT_TOKEN_TYPE


async def test_an_unknown_requested_token_type_is_invalid_request(ctx: ServerContext) -> None:
    error = await refusal(ctx, exchange_request((await user_token(ctx)).token, requested_token_type="urn:x:saml"))
    assert error.error == "invalid_request"
    assert "requested_token_type" in error.description


async def test_an_id_token_is_issued_only_where_the_policy_allows(context_factory: ContextFactory) -> None:
    ctx = await context_factory()
    error = await refusal(ctx, exchange_request((await user_token(ctx)).token, requested_token_type=ID_TOKEN_TYPE))
    assert error.error == "invalid_request"
    allowed = await context_factory({"requested-token-types": [ID_TOKEN_TYPE]})
    body, claims = await granted(
        allowed, exchange_request((await user_token(allowed)).token, requested_token_type=ID_TOKEN_TYPE)
    )
    # RFC 8693 2.2.1: a token that is not an access token has token_type N_A.
    assert (body["issued_token_type"], body["token_type"]) == (ID_TOKEN_TYPE, "N_A")
    assert (claims["sub"], claims["aud"], claims["azp"]) == ("baeldung", "message-service", "message-service")
    assert "scope" not in body


async def test_an_id_token_for_another_audience_is_invalid_target(context_factory: ContextFactory) -> None:
    ctx = await context_factory({"requested-token-types": [ID_TOKEN_TYPE], **TWO_APIS})
    subject = await user_token(ctx)
    error = await refusal(ctx, exchange_request(subject.token, requested_token_type=ID_TOKEN_TYPE, audience="billing"))
    assert error.error == "invalid_target"


async def test_token_time_to_live_comes_from_the_policy(context_factory: ContextFactory) -> None:
    ctx = await context_factory({"token-time-to-live": "60s"})
    body, _ = await granted(ctx, exchange_request((await user_token(ctx)).token))
    assert body["expires_in"] == 60


async def test_may_outlive_subject_token_lifts_the_cap(context_factory: ContextFactory) -> None:
    ctx = await context_factory({"token-time-to-live": "10m", "may-outlive-subject-token": True})
    body, _ = await granted(ctx, exchange_request((await user_token(ctx, ttl=timedelta(minutes=1))).token))
    assert body["expires_in"] == 600
