"""The Transaction Token Service in the protocol core (no HTTP): lifetimes on a fake clock, and the start-up
checks of the ``transaction-tokens`` configuration."""

from __future__ import annotations

from collections.abc import AsyncIterator
from datetime import timedelta
from typing import Any

import pytest
from pydantic import ValidationError
from tests.server.exchange.fakes import FakeClock, FakeStore, make_context
from tests.server.transaction_tokens.support import TRUST_DOMAIN, server_data, transaction_tokens

from tokensmith import jose
from tokensmith.config.exchange import ACCESS_TOKEN_TYPE, ID_TOKEN_TYPE
from tokensmith.config.server import TOKEN_EXCHANGE, ServerConfig
from tokensmith.config.transaction_tokens import SELF_SIGNED_TOKEN_TYPE, TXN_TOKEN_TYPE
from tokensmith.errors import OAuthError
from tokensmith.server.core.context import ServerContext
from tokensmith.server.core.grants.base import AuthenticatedClient, TokenRequest


@pytest.fixture
def clock() -> FakeClock:
    return FakeClock()


@pytest.fixture
async def ctx(clock: FakeClock) -> AsyncIterator[ServerContext]:
    context = await make_context(ServerConfig.model_validate(server_data()), FakeStore(), clock)
    yield context
    await context.aclose()


async def request(ctx: ServerContext, client_id: str, **params: str) -> dict[str, Any]:
    form = {
        "grant_type": TOKEN_EXCHANGE,
        "requested_token_type": TXN_TOKEN_TYPE,
        "audience": TRUST_DOMAIN,
        "subject_token_type": ACCESS_TOKEN_TYPE,
        **params,
    }
    client = ctx.config.client_by_id(client_id)
    assert client is not None
    grant = ctx.grants[TOKEN_EXCHANGE]
    response = await grant(
        TokenRequest({k: [v] for k, v in form.items()}), AuthenticatedClient(client, "client_secret_basic"), ctx
    )
    return response.to_dict()


async def user_token(ctx: ServerContext, minutes: int = 60) -> str:
    issued = await ctx.tokens.issue_access_token(
        subject="baeldung",
        client_id="messaging-client-oidc",
        audience=["user-service"],
        scope=["message.read", "profile"],
        ttl=timedelta(minutes=minutes),
    )
    return issued.token


async def test_the_lifetime_is_the_configured_one_not_the_subject_tokens(ctx: ServerContext) -> None:
    body = await request(ctx, "user-service", subject_token=await user_token(ctx, minutes=1), scope="message.read")
    assert body["expires_in"] == 120
    claims = jose.parse(body["access_token"]).claims
    assert claims["exp"] - claims["iat"] == 120


async def test_a_replacement_never_outlives_the_token_it_replaces(ctx: ServerContext, clock: FakeClock) -> None:
    original = await request(ctx, "user-service", subject_token=await user_token(ctx), scope="message.read")
    first = jose.parse(original["access_token"]).claims
    clock.advance(seconds=90)
    replaced = await request(
        ctx,
        "message-service",
        subject_token=original["access_token"],
        subject_token_type=TXN_TOKEN_TYPE,
        scope="message.read",
    )
    assert replaced["expires_in"] == 30
    second = jose.parse(replaced["access_token"]).claims
    assert second["exp"] == first["exp"]
    # Replaced again: the chain grows, oldest first.
    again = await request(
        ctx,
        "message-service",
        subject_token=replaced["access_token"],
        subject_token_type=TXN_TOKEN_TYPE,
        scope="message.read",
    )
    third = jose.parse(again["access_token"]).claims
    assert third["rctx"]["req_wl_chain"] == ["user-service.trust-domain.example", "message-service"]
    assert third["txn"] == first["txn"]

    clock.advance(seconds=31)
    with pytest.raises(OAuthError) as refused:
        await request(
            ctx,
            "message-service",
            subject_token=original["access_token"],
            subject_token_type=TXN_TOKEN_TYPE,
            scope="message.read",
        )
    assert refused.value.error == "invalid_request"
    assert "expired" in (refused.value.description or "")


async def test_an_expired_subject_token_gives_no_transaction_token(ctx: ServerContext, clock: FakeClock) -> None:
    token = await user_token(ctx, minutes=1)
    clock.advance(minutes=5)
    with pytest.raises(OAuthError) as refused:
        await request(ctx, "user-service", subject_token=token, scope="message.read")
    assert "expired" in (refused.value.description or "")


async def test_without_the_setting_no_transaction_token_is_issued(clock: FakeClock) -> None:
    data = server_data()
    del data["transaction-tokens"]
    ctx = await make_context(ServerConfig.model_validate(data), FakeStore(), clock)
    try:
        with pytest.raises(OAuthError) as refused:
            await request(ctx, "message-service", subject_token=await user_token(ctx), scope="message.read")
        assert refused.value.error == "invalid_request"
        assert "does not issue Transaction Tokens" in (refused.value.description or "")
    finally:
        await ctx.aclose()


async def test_an_id_token_backs_only_the_unscoped_subject_scopes(clock: FakeClock) -> None:
    policy = {
        "workload": "edge",
        "scopes": ["message.read", "message.write"],
        "subject-token-types": [ID_TOKEN_TYPE],
        "unscoped-subject-scopes": ["message.read"],
    }
    ctx = await make_context(
        ServerConfig.model_validate(server_data(clients={"user-service": policy})), FakeStore(), clock
    )
    try:
        id_token = await ctx.tokens.issue_id_token(
            subject="baeldung", client_id="user-service", ttl=timedelta(minutes=5)
        )
        body = await request(
            ctx, "user-service", subject_token=id_token.token, subject_token_type=ID_TOKEN_TYPE, scope="message.read"
        )
        assert jose.parse(body["access_token"]).claims["sub"] == "baeldung"
        with pytest.raises(OAuthError) as refused:
            await request(
                ctx,
                "user-service",
                subject_token=id_token.token,
                subject_token_type=ID_TOKEN_TYPE,
                scope="message.write",
            )
        assert refused.value.error == "invalid_scope"
    finally:
        await ctx.aclose()


async def test_a_subject_token_without_scope_is_refused_by_default(ctx: ServerContext) -> None:
    issued = await ctx.tokens.issue_access_token(
        subject="baeldung",
        client_id="messaging-client-oidc",
        audience=["user-service"],
        scope=[],
        ttl=timedelta(minutes=5),
    )
    with pytest.raises(OAuthError) as refused:
        await request(ctx, "user-service", subject_token=issued.token, scope="message.read")
    assert "carries no scope" in (refused.value.description or "")


def client_entry(**overrides: Any) -> dict[str, Any]:
    return {"user-service": {"scopes": ["message.read"], **overrides}}


CONFIG_ERRORS = [
    pytest.param({"trust-domain": ""}, "trust-domain", id="empty-trust-domain"),
    pytest.param({"time-to-live": "2h"}, "at most 1h", id="too-long"),
    pytest.param({"time-to-live": "0s"}, "positive", id="zero"),
    pytest.param({"max-context-bytes": 10}, "max-context-bytes", id="tiny-context"),
    pytest.param({"clients": {"nobody": {"scopes": ["a"]}}}, "transaction-tokens.clients.nobody", id="unknown"),
    pytest.param(
        {"clients": {"spa": {"scopes": ["a"]}}}, "transaction-tokens.clients.spa", id="client-without-exchange"
    ),
    pytest.param({"clients": {"user-service": {"scopes": []}}}, "scopes", id="no-scopes"),
    pytest.param(
        {"clients": client_entry(**{"subject-token-types": ["urn:x"]})}, "unsupported subject token", id="bad-type"
    ),
    pytest.param(
        {"clients": client_entry(**{"subject-token-issuers": ["https://idp.example"]})},
        "transaction-tokens.clients.user-service.subject-token-issuers",
        id="untrusted-issuer",
    ),
    pytest.param(
        {"clients": client_entry(**{"scope-mappings": {"profile": ["admin"]}})},
        "scope-mappings.profile",
        id="mapping-beyond-scopes",
    ),
    pytest.param({"clients": client_entry(typo=True)}, "typo", id="unknown-key"),
]


@pytest.mark.parametrize(("overrides", "named"), CONFIG_ERRORS)
def test_the_configuration_is_checked_at_start(overrides: dict[str, Any], named: str) -> None:
    with pytest.raises(ValidationError) as error:
        ServerConfig.model_validate(server_data(**overrides))
    assert named in str(error.value)


def test_self_signed_tokens_need_the_clients_keys() -> None:
    data = server_data(clients={"message-service": {"scopes": ["a"], "subject-token-types": [SELF_SIGNED_TOKEN_TYPE]}})
    with pytest.raises(ValidationError) as error:
        ServerConfig.model_validate(data)
    assert "transaction-tokens.clients.message-service.subject-token-types" in str(error.value)
    assert "jwks" in str(error.value)


def test_a_public_client_is_refused() -> None:
    data = server_data(clients={"spa": {"scopes": ["a"]}})
    data["clients"]["spa"]["registration"]["authorization-grant-types"] = [TOKEN_EXCHANGE]
    with pytest.raises(ValidationError) as error:
        ServerConfig.model_validate(data)
    assert "confidential" in str(error.value)


def test_the_defaults() -> None:
    settings = ServerConfig.model_validate(server_data(**{"time-to-live": "5m"})).transaction_tokens
    assert settings is not None
    assert settings.time_to_live.total_seconds() == 300
    assert transaction_tokens()["trust-domain"] == settings.trust_domain
