"""Refresh tokens from a token exchange (RFC 8693 2.2.1), only where the policy allows it, without HTTP.

A refresh re-issues the exchanged context (aud, scope, act, user claims, lineage) and never outlives the subject
token unless the policy says so; revoking the subject token (or an ancestor) makes the refresh token unusable.
"""

from __future__ import annotations

from dataclasses import replace
from datetime import timedelta
from pathlib import Path
from typing import Any

import pytest
from tests.server.configs import config_data
from tests.server.protocol import as_client, grant

from tokensmith.config.exchange import ACCESS_TOKEN_TYPE, REFRESH_TOKEN_TYPE
from tokensmith.config.server import REFRESH_TOKEN, TOKEN_EXCHANGE, ServerConfig
from tokensmith.errors import OAuthError
from tokensmith.server.core.context import ServerContext
from tokensmith.server.core.digest import digest
from tokensmith.server.core.grants.base import TokenResponse
from tokensmith.server.core.grants.token_exchange import token_exchange_metadata

EXCHANGER = "message-service"
RELAY = "message-relay"
STRICT = "strict-service"  # token exchange allowed, refresh tokens not (the default)


def exchange_clients() -> dict[str, Any]:
    return {
        "exchanger": {
            "registration": {
                "client-id": EXCHANGER,
                "client-secret": "{noop}token",
                "authorization-grant-types": [TOKEN_EXCHANGE, REFRESH_TOKEN],
                "scopes": ["message.read", "message.write"],
            },
            "token-exchange": {"issue-refresh-token": True, "refresh-token-time-to-live": "2h"},
        },
        "relay": {
            "registration": {
                "client-id": RELAY,
                "client-secret": "{noop}relay",
                "authorization-grant-types": [TOKEN_EXCHANGE, REFRESH_TOKEN, "client_credentials"],
                "scopes": ["message.read"],
            },
            "token-exchange": {"impersonation": False, "delegation": True, "issue-refresh-token": True},
        },
        "strict": {
            "registration": {
                "client-id": STRICT,
                "client-secret": "{noop}strict",
                "authorization-grant-types": [TOKEN_EXCHANGE, REFRESH_TOKEN],
                "scopes": ["message.read"],
            },
        },
    }


@pytest.fixture
def config(tmp_path: Path) -> ServerConfig:
    data = config_data()
    data["clients"].update(exchange_clients())
    data["keys"] = {"access-token-algorithm": "ES256", "id-token-algorithm": "ES256"}
    data["database-url"] = f"sqlite+aiosqlite:///{tmp_path / 'tokensmith.db'}"
    return ServerConfig.model_validate(data)


async def user_token(ctx: ServerContext, *, minutes: int = 30, **claims: Any) -> tuple[str, str]:
    """An access token of ours for alice at user-service (the subject token), and its jti."""
    issued = await ctx.tokens.issue_access_token(
        subject="alice",
        client_id="messaging-client-oidc",
        audience=("user-service",),
        scope=("message.read", "message.write"),
        ttl=timedelta(minutes=minutes),
        extra_claims={"department": "wonderland", **claims},
    )
    return issued.token, issued.jti


async def exchange(ctx: ServerContext, client_id: str, subject_token: str, **params: Any) -> TokenResponse:
    return await grant(
        ctx,
        as_client(ctx, client_id),
        grant_type=TOKEN_EXCHANGE,
        subject_token=subject_token,
        subject_token_type=ACCESS_TOKEN_TYPE,
        **params,
    )


async def refresh(ctx: ServerContext, client_id: str, refresh_token: str, **params: Any) -> TokenResponse:
    return await grant(
        ctx, as_client(ctx, client_id), grant_type="refresh_token", refresh_token=refresh_token, **params
    )


def claims_of(ctx: ServerContext, token: str) -> dict[str, Any]:
    return dict(ctx.keys.verify(token).claims)


async def test_refresh_token_only_where_the_policy_allows_it(ctx: ServerContext) -> None:
    subject, _ = await user_token(ctx)
    plain = await exchange(ctx, STRICT, subject)
    assert plain.refresh_token is None
    with pytest.raises(OAuthError) as refused:
        await exchange(ctx, STRICT, subject, requested_token_type=REFRESH_TOKEN_TYPE)
    assert refused.value.error == "invalid_request"

    allowed = await exchange(ctx, EXCHANGER, subject, scope="message.read")
    assert allowed.refresh_token is not None
    assert allowed.issued_token_type == ACCESS_TOKEN_TYPE


def test_issue_refresh_token_needs_the_refresh_grant() -> None:
    clients = exchange_clients()
    clients["exchanger"]["registration"]["authorization-grant-types"] = [TOKEN_EXCHANGE]
    data = config_data()
    data["clients"].update(clients)
    with pytest.raises(ValueError, match="issue-refresh-token needs refresh_token"):
        ServerConfig.model_validate(data)


async def test_refresh_keeps_the_exchanged_audience_scope_and_claims(ctx: ServerContext) -> None:
    subject, subject_jti = await user_token(ctx)
    first = await exchange(ctx, EXCHANGER, subject, scope="message.read")
    assert first.refresh_token is not None
    exchanged = claims_of(ctx, first.access_token)

    again = await refresh(ctx, EXCHANGER, first.refresh_token)
    refreshed = claims_of(ctx, again.access_token)
    for claim in ("sub", "aud", "scope", "client_id", "department"):
        assert refreshed[claim] == exchanged[claim], claim
    assert refreshed["aud"] == EXCHANGER
    assert refreshed["scope"] == "message.read"
    assert again.scope == ("message.read",)
    record = await ctx.store.get_issued_token(refreshed["jti"])
    assert record is not None
    assert record.parent_jti == subject_jti

    # A refresh may narrow the scope, never widen it past what the exchange granted.
    with pytest.raises(OAuthError) as wider:
        await refresh(ctx, EXCHANGER, again.refresh_token or "", scope="message.read message.write")
    assert wider.value.error == "invalid_scope"


async def test_delegated_refresh_keeps_the_act_chain(ctx: ServerContext) -> None:
    subject, _ = await user_token(ctx)
    actor = await grant(ctx, as_client(ctx, RELAY), grant_type="client_credentials")
    first = await exchange(ctx, RELAY, subject, actor_token=actor.access_token, actor_token_type=ACCESS_TOKEN_TYPE)
    assert first.refresh_token is not None
    act = claims_of(ctx, first.access_token)["act"]
    assert act["sub"] == RELAY
    again = await refresh(ctx, RELAY, first.refresh_token)
    assert claims_of(ctx, again.access_token)["act"] == act

    # Revoking the actor token ends the delegation: its refresh token dies with it.
    await ctx.store.revoke_token_lineage(claims_of(ctx, actor.access_token)["jti"], ctx.clock())
    with pytest.raises(OAuthError) as revoked:
        await refresh(ctx, RELAY, again.refresh_token or "")
    assert revoked.value.error == "invalid_grant"


async def test_rotation_and_reuse_detection(ctx: ServerContext) -> None:
    subject, _ = await user_token(ctx)
    first = await exchange(ctx, EXCHANGER, subject)
    assert first.refresh_token is not None
    second = await refresh(ctx, EXCHANGER, first.refresh_token)
    assert second.refresh_token is not None
    assert second.refresh_token != first.refresh_token

    with pytest.raises(OAuthError) as reused:
        await refresh(ctx, EXCHANGER, first.refresh_token)
    assert "already used" in reused.value.description
    # Reuse revokes the family: the rotated refresh token and every access token of the exchange.
    with pytest.raises(OAuthError):
        await refresh(ctx, EXCHANGER, second.refresh_token)
    for response in (first, second):
        assert await ctx.store.is_token_revoked(claims_of(ctx, response.access_token)["jti"])


async def test_revoking_the_ancestor_kills_the_refresh_token(ctx: ServerContext) -> None:
    subject, subject_jti = await user_token(ctx)
    first = await exchange(ctx, EXCHANGER, subject)
    assert first.refresh_token is not None
    second = await refresh(ctx, EXCHANGER, first.refresh_token)
    assert second.refresh_token is not None

    revoked = await ctx.store.revoke_token_lineage(subject_jti, ctx.clock())
    assert claims_of(ctx, second.access_token)["jti"] in revoked
    record = await ctx.store.get_refresh_token(digest(second.refresh_token))
    assert record is not None
    assert record.revoked_at is not None
    with pytest.raises(OAuthError) as refused:
        await refresh(ctx, EXCHANGER, second.refresh_token)
    assert refused.value.error == "invalid_grant"


async def test_refresh_refused_when_the_subject_was_revoked_during_the_exchange(ctx: ServerContext) -> None:
    """The race the store cannot see: the refresh token written after its subject token was revoked."""
    subject, subject_jti = await user_token(ctx)
    first = await exchange(ctx, EXCHANGER, subject)
    assert first.refresh_token is not None
    # Mark only the subject token revoked, as a concurrent revocation committed before our refresh row would.
    await ctx.store.revoke_token_lineage(subject_jti, ctx.clock())
    token_hash = digest(first.refresh_token)
    record = await ctx.store.get_refresh_token(token_hash)
    assert record is not None
    late = replace(record, token_hash=digest("late"), revoked_at=None, used_at=None)
    await ctx.store.save_refresh_token(late)
    with pytest.raises(OAuthError, match="exchanged from has been revoked"):
        await refresh(ctx, EXCHANGER, "late")


async def test_refresh_never_outlives_the_subject_token(ctx: ServerContext, clock: Any) -> None:
    subject, _ = await user_token(ctx, minutes=10)
    first = await exchange(ctx, EXCHANGER, subject)
    assert first.refresh_token is not None
    record = await ctx.store.get_refresh_token(digest(first.refresh_token))
    assert record is not None
    subject_exp = claims_of(ctx, subject)["exp"]
    assert int(record.expires_at.timestamp()) == subject_exp  # not the policy's 2 h

    clock.advance(minutes=9)
    again = await refresh(ctx, EXCHANGER, first.refresh_token)
    assert claims_of(ctx, again.access_token)["exp"] <= subject_exp
    clock.advance(minutes=2)
    with pytest.raises(OAuthError) as expired:
        await refresh(ctx, EXCHANGER, again.refresh_token or "")
    assert expired.value.error == "invalid_grant"


async def test_requested_token_type_refresh_token(ctx: ServerContext) -> None:
    subject, _ = await user_token(ctx)
    issued = await exchange(ctx, EXCHANGER, subject, requested_token_type=REFRESH_TOKEN_TYPE, scope="message.read")
    assert issued.issued_token_type == REFRESH_TOKEN_TYPE
    assert issued.token_type == "N_A"
    assert issued.refresh_token is None
    assert 0 < issued.expires_in <= 30 * 60
    access = await refresh(ctx, EXCHANGER, issued.access_token)
    assert claims_of(ctx, access.access_token)["aud"] == EXCHANGER


async def test_policy_switched_off_later_refuses_refresh(ctx: ServerContext, config: ServerConfig) -> None:
    subject, _ = await user_token(ctx)
    first = await exchange(ctx, EXCHANGER, subject)
    assert first.refresh_token is not None
    data = config.model_dump(by_alias=True)
    data["clients"]["exchanger"]["token-exchange"]["issue-refresh-token"] = False
    ctx = replace(ctx, config=ServerConfig.model_validate(data))
    with pytest.raises(OAuthError, match="no longer allows"):
        await refresh(ctx, EXCHANGER, first.refresh_token)


def test_discovery_lists_refresh_token_type_when_some_client_may_get_one(config: ServerConfig) -> None:
    assert REFRESH_TOKEN_TYPE in token_exchange_metadata(config)["token_exchange_requested_token_types_supported"]
    data = config_data()
    data["clients"]["strict"] = exchange_clients()["strict"]
    assert (
        REFRESH_TOKEN_TYPE
        not in token_exchange_metadata(ServerConfig.model_validate(data))[
            "token_exchange_requested_token_types_supported"
        ]
    )
