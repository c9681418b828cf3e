"""The refresh token grant: rotation, reuse detection, narrowing scope only."""

from __future__ import annotations

import pytest
from tests.server.configs import SPA_CLIENT, WEB_CLIENT, WEB_REDIRECT
from tests.server.conftest import FakeClock
from tests.server.protocol import as_client, grant, new_code, redeem_code

from tokensmith.errors import OAuthError
from tokensmith.server.core.access_tokens import active_access_token
from tokensmith.server.core.context import ServerContext
from tokensmith.server.core.digest import digest


async def first_tokens(ctx: ServerContext, scope: str = "openid profile message.read") -> dict[str, object]:
    return await redeem_code(ctx, await new_code(ctx, WEB_CLIENT, WEB_REDIRECT, scope=scope), WEB_CLIENT, WEB_REDIRECT)


async def refresh(ctx: ServerContext, token: object, client_id: str = WEB_CLIENT, **params: str) -> dict[str, object]:
    response = await grant(
        ctx, as_client(ctx, client_id), grant_type="refresh_token", refresh_token=str(token), **params
    )
    return response.to_dict()


async def test_refresh_rotates_and_keeps_the_grant(ctx: ServerContext) -> None:
    first = await first_tokens(ctx)
    second = await refresh(ctx, first["refresh_token"])
    assert second["refresh_token"] != first["refresh_token"]
    assert second["scope"] == "openid profile message.read"
    assert "id_token" in second
    claims = ctx.keys.verify(str(second["access_token"])).claims
    assert claims["sub"] == "alice"
    assert claims["aud"] == "user-service"
    stored = await ctx.store.get_refresh_token(digest(str(first["refresh_token"])))
    assert stored is not None
    assert stored.used_at is not None
    third = await refresh(ctx, second["refresh_token"])
    assert third["refresh_token"] not in (first["refresh_token"], second["refresh_token"])


async def test_reused_refresh_token_revokes_the_family(ctx: ServerContext) -> None:
    first = await first_tokens(ctx)
    second = await refresh(ctx, first["refresh_token"])
    with pytest.raises(OAuthError) as caught:
        await refresh(ctx, first["refresh_token"])
    assert caught.value.error == "invalid_grant"
    # Everything of the grant is gone: the rotated refresh token and the access tokens.
    with pytest.raises(OAuthError):
        await refresh(ctx, second["refresh_token"])
    assert await active_access_token(ctx, str(second["access_token"])) is None
    assert await active_access_token(ctx, str(first["access_token"])) is None


async def test_scope_may_narrow_but_not_widen(ctx: ServerContext) -> None:
    first = await first_tokens(ctx, scope="openid message.read")
    narrowed = await refresh(ctx, first["refresh_token"], scope="message.read")
    assert narrowed["scope"] == "message.read"
    assert "id_token" not in narrowed
    # The new refresh token keeps the whole grant (RFC 6749 6).
    again = await refresh(ctx, narrowed["refresh_token"])
    assert again["scope"] == "openid message.read"
    with pytest.raises(OAuthError) as caught:
        await refresh(ctx, again["refresh_token"], scope="message.read profile")
    assert caught.value.error == "invalid_scope"


async def test_refresh_token_of_another_client_is_refused_and_not_spent(ctx: ServerContext) -> None:
    first = await first_tokens(ctx)
    with pytest.raises(OAuthError) as caught:
        await grant(
            ctx,
            as_client(ctx, SPA_CLIENT, "none"),
            grant_type="refresh_token",
            refresh_token=str(first["refresh_token"]),
        )
    assert caught.value.error == "invalid_grant"
    assert "refresh_token" in await refresh(ctx, first["refresh_token"])


async def test_expired_and_unknown_refresh_tokens(ctx: ServerContext, clock: FakeClock) -> None:
    with pytest.raises(OAuthError) as unknown:
        await refresh(ctx, "no-such-token")
    assert unknown.value.error == "invalid_grant"
    first = await first_tokens(ctx)
    clock.advance(minutes=61)
    with pytest.raises(OAuthError) as expired:
        await refresh(ctx, first["refresh_token"])
    assert expired.value.error == "invalid_grant"
    assert "expired" in expired.value.description


async def test_revoked_refresh_token_is_refused(ctx: ServerContext) -> None:
    first = await first_tokens(ctx)
    await ctx.store.revoke_refresh_token(digest(str(first["refresh_token"])), ctx.clock())
    with pytest.raises(OAuthError) as caught:
        await refresh(ctx, first["refresh_token"])
    assert caught.value.error == "invalid_grant"
