"""Nothing outlives the user or the client it was issued for, and no refresh family lives for ever.

A user or client removed from the configuration is gone after the restart: the same database, served with the new
configuration, refuses everything issued for them (sessions, codes, refresh tokens, access tokens as subject
tokens, introspection, userinfo), and revokes what it refuses through the lineage.
"""

from __future__ import annotations

from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from datetime import timedelta
from pathlib import Path
from typing import Any

import httpx
import pytest
from tests.server.browser import Browser, basic_auth, web_authorize_params
from tests.server.configs import (
    PLAIN_CLIENT,
    PLAIN_REDIRECT,
    SERVICE_CLIENT,
    USERNAME,
    WEB_CLIENT,
    WEB_REDIRECT,
    config_data,
)
from tests.server.conftest import FakeClock
from tests.server.protocol import as_client, grant, new_code, redeem_code

from tokensmith.config.exchange import ACCESS_TOKEN_TYPE
from tokensmith.config.server import TOKEN_EXCHANGE, ServerConfig
from tokensmith.errors import OAuthError
from tokensmith.server.app import create_app
from tokensmith.server.core.context import ServerContext
from tokensmith.server.core.digest import digest
from tokensmith.server.core.introspection import introspect
from tokensmith.server.core.sessions import SESSION_COOKIE
from tokensmith.server.core.wiring import build_context
from tokensmith.server.key_encryption import configured_encryption_key
from tokensmith.server.keys import KeyManager
from tokensmith.store import open_store

EXCHANGER = "message-service"
EXCHANGER_CLIENT: dict[str, Any] = {
    "registration": {
        "client-id": EXCHANGER,
        "client-secret": "{noop}token",
        "authorization-grant-types": [TOKEN_EXCHANGE, "refresh_token"],
        "scopes": ["openid", "profile", "message.read", "reports.read"],
    },
}


def make_config(
    database_url: str,
    *,
    without_user: str | None = None,
    without_client: str | None = None,
    token: dict[str, dict[str, str]] | None = None,
    may_outlive: bool = False,
) -> ServerConfig:
    """The test servers' configuration; ``token``: token settings by client name."""
    data = config_data()
    data["database-url"] = database_url
    data["keys"] = {"access-token-algorithm": "ES256", "id-token-algorithm": "ES256"}
    exchanger = {
        **EXCHANGER_CLIENT,
        "token-exchange": {"issue-refresh-token": True, "may-outlive-subject-token": may_outlive},
    }
    data["clients"]["message-service"] = exchanger
    for name, settings in (token or {}).items():
        data["clients"][name] = {**data["clients"][name], "token": settings}
    data["users"] = [u for u in data["users"] if u["username"] != without_user]
    data["clients"] = {
        name: client
        for name, client in data["clients"].items()
        if client["registration"]["client-id"] != without_client
    }
    return ServerConfig.model_validate(data)


@asynccontextmanager
async def started(config: ServerConfig, clock: FakeClock) -> AsyncIterator[ServerContext]:
    """The server's protocol core as one start of ``tokensmith serve`` builds it, on the configured database."""
    store = open_store(config.database_url)
    await store.initialize()
    keys = KeyManager(
        store, config.keys, clock, encryption_key=configured_encryption_key(config.keys, config.database_url)
    )
    await keys.load()
    ctx = build_context(config, store, keys, clock)
    try:
        yield ctx
    finally:
        await ctx.aclose()
        await store.close()


@pytest.fixture
def database_url(tmp_path: Path) -> str:
    return f"sqlite+aiosqlite:///{tmp_path / 'tokensmith.db'}"


async def user_tokens(
    ctx: ServerContext, client_id: str = WEB_CLIENT, redirect_uri: str = WEB_REDIRECT
) -> dict[str, Any]:
    code = await new_code(ctx, client_id, redirect_uri, scope="openid message.read")
    return await redeem_code(ctx, code, client_id, redirect_uri)


async def exchange(ctx: ServerContext, subject_token: str) -> dict[str, Any]:
    response = await grant(
        ctx,
        as_client(ctx, EXCHANGER),
        grant_type=TOKEN_EXCHANGE,
        subject_token=subject_token,
        subject_token_type=ACCESS_TOKEN_TYPE,
    )
    return response.to_dict()


def jti_of(ctx: ServerContext, token: str) -> str:
    jti: str = ctx.keys.verify(token).claims["jti"]
    return jti


async def test_a_removed_users_refresh_token_is_refused_and_its_lineage_revoked(
    database_url: str, clock: FakeClock
) -> None:
    async with started(make_config(database_url), clock) as before:
        tokens = await user_tokens(before)
        exchanged = await exchange(before, tokens["access_token"])
        assert before.keys.verify(tokens["access_token"]).claims["auth_time"]  # marks a user's token
    async with started(make_config(database_url, without_user=USERNAME), clock) as after:
        with pytest.raises(OAuthError) as refused:
            await grant(
                after, as_client(after, WEB_CLIENT), grant_type="refresh_token", refresh_token=tokens["refresh_token"]
            )
        assert refused.value.error == "invalid_grant"
        assert "user it was issued for no longer exists" in refused.value.description
        for token in (tokens["access_token"], tokens["id_token"], exchanged["access_token"]):
            assert await after.store.is_token_revoked(jti_of(after, token))
        # Exchanges refresh tokens issued from the user's token are gone with it.
        exchanged_refresh = await after.store.get_refresh_token(digest(exchanged["refresh_token"]))
        assert exchanged_refresh is not None
        assert exchanged_refresh.revoked_at is not None


async def test_a_removed_users_authorization_code_is_refused(database_url: str, clock: FakeClock) -> None:
    async with started(make_config(database_url), clock) as before:
        code = await new_code(before, WEB_CLIENT, WEB_REDIRECT, scope="openid")
    async with started(make_config(database_url, without_user=USERNAME), clock) as after:
        with pytest.raises(OAuthError) as refused:
            await redeem_code(after, code, WEB_CLIENT, WEB_REDIRECT)
        assert refused.value.error == "invalid_grant"
        assert "no longer exists" in refused.value.description


async def test_a_removed_users_access_token_neither_exchanges_nor_introspects(
    database_url: str, clock: FakeClock
) -> None:
    async with started(make_config(database_url), clock) as before:
        tokens = await user_tokens(before)
        first_exchange = await exchange(before, tokens["access_token"])
        again = await user_tokens(before)  # the same user again: another grant, still alice's
    async with started(make_config(database_url, without_user=USERNAME), clock) as after:
        assert await introspect(after, tokens["access_token"], SERVICE_CLIENT) == {"active": False}
        assert await introspect(after, first_exchange["access_token"], SERVICE_CLIENT) == {"active": False}
        assert await introspect(after, tokens["refresh_token"], WEB_CLIENT) == {"active": False}
        with pytest.raises(OAuthError) as refused:
            await exchange(after, again["access_token"])
        assert refused.value.error == "invalid_request"
        assert refused.value.description == (
            "subject_token is no longer valid: the user it was issued for no longer exists"
        )
        # The refused token's lineage is revoked, not only refused.
        assert await after.store.is_token_revoked(jti_of(after, again["access_token"]))


async def test_tokens_whose_subject_is_no_local_user_still_exchange(database_url: str, clock: FakeClock) -> None:
    """A client's own token (client credentials) and a token exchanged from a trusted issuer's have a `sub` that
    is no configured user; they do not say they are a user's (no `auth_time`), and keep working."""
    async with started(make_config(database_url, without_user=USERNAME), clock) as ctx:
        service = await grant(ctx, as_client(ctx, SERVICE_CLIENT), grant_type="client_credentials")
        assert await introspect(ctx, service.access_token, SERVICE_CLIENT) != {"active": False}
        foreign = await ctx.tokens.issue_access_token(
            subject="partner:carol",
            client_id=EXCHANGER,
            audience=(EXCHANGER,),
            scope=("openid",),
            ttl=timedelta(minutes=5),
        )
        exchanged = await exchange(ctx, foreign.token)
        assert ctx.keys.verify(exchanged["access_token"]).claims["sub"] == "partner:carol"
        assert (await introspect(ctx, exchanged["access_token"], SERVICE_CLIENT))["active"] is True


async def test_a_removed_clients_tokens_stop(database_url: str, clock: FakeClock) -> None:
    async with started(make_config(database_url), clock) as before:
        tokens = await user_tokens(before, PLAIN_CLIENT, PLAIN_REDIRECT)
        service = await grant(before, as_client(before, SERVICE_CLIENT), grant_type="client_credentials")
    async with started(make_config(database_url, without_client=PLAIN_CLIENT), clock) as after:
        assert await introspect(after, tokens["access_token"], SERVICE_CLIENT) == {"active": False}
        with pytest.raises(OAuthError) as refused:
            await exchange(after, tokens["access_token"])
        assert refused.value.error == "invalid_request"
        assert f"the client {PLAIN_CLIENT!r} it was issued to no longer exists" in refused.value.description
        assert await after.store.is_token_revoked(jti_of(after, tokens["access_token"]))
    async with started(make_config(database_url, without_client=SERVICE_CLIENT), clock) as after:
        assert await introspect(after, service.access_token, PLAIN_CLIENT) == {"active": False}
        with pytest.raises(OAuthError) as refused:
            await exchange(after, service.access_token)
        assert "no longer exists" in refused.value.description


async def test_a_refresh_family_ends_at_its_maximum_lifetime(database_url: str, clock: FakeClock) -> None:
    config = make_config(
        database_url, token={"web": {"refresh-token-time-to-live": "1h", "refresh-token-max-lifetime": "3h"}}
    )
    family_end = clock.now + timedelta(hours=3)

    async def refresh(ctx: ServerContext, token: str) -> str:
        response = await grant(ctx, as_client(ctx, WEB_CLIENT), grant_type="refresh_token", refresh_token=token)
        assert response.refresh_token is not None
        return response.refresh_token

    async with started(config, clock) as ctx:
        token = (await user_tokens(ctx))["refresh_token"]
        for _ in range(3):  # once every 50 minutes: each rotation would otherwise give a fresh hour
            clock.advance(minutes=50)
            token = await refresh(ctx, token)
            record = await ctx.store.get_refresh_token(digest(token))
            assert record is not None
            assert record.expires_at == min(clock.now + timedelta(hours=1), family_end)
        clock.advance(minutes=29)  # one minute before the end: the last rotation, and its token ends with the family
        token = await refresh(ctx, token)
        clock.advance(minutes=2)
        with pytest.raises(OAuthError) as refused:
            await refresh(ctx, token)
        assert refused.value.error == "invalid_grant"

    # A shorter maximum applies to families already running, at the next restart.
    clock.advance(hours=-2)
    longer = make_config(
        database_url, token={"web": {"refresh-token-time-to-live": "2h", "refresh-token-max-lifetime": "3h"}}
    )
    async with started(longer, clock) as ctx:
        token = await refresh(ctx, (await user_tokens(ctx))["refresh_token"])
    clock.advance(minutes=61)
    shorter = make_config(
        database_url, token={"web": {"refresh-token-time-to-live": "2h", "refresh-token-max-lifetime": "1h"}}
    )
    async with started(shorter, clock) as ctx:
        with pytest.raises(OAuthError) as refused:
            await refresh(ctx, token)
        assert refused.value.error == "invalid_grant"
        assert "maximum lifetime (refresh-token-max-lifetime)" in refused.value.description


async def test_an_exchange_refresh_family_ends_at_its_maximum_lifetime(database_url: str, clock: FakeClock) -> None:
    lifetimes = {"refresh-token-time-to-live": "1h", "refresh-token-max-lifetime": "90m"}
    config = make_config(database_url, token={"message-service": lifetimes}, may_outlive=True)
    async with started(config, clock) as ctx:
        started_at = clock.now
        token = (await exchange(ctx, (await user_tokens(ctx))["access_token"]))["refresh_token"]
        clock.advance(minutes=50)
        refreshed = await grant(ctx, as_client(ctx, EXCHANGER), grant_type="refresh_token", refresh_token=token)
        assert refreshed.refresh_token is not None
        record = await ctx.store.get_refresh_token(digest(refreshed.refresh_token))
        assert record is not None
        assert record.expires_at == started_at + timedelta(minutes=90)
        clock.advance(minutes=41)
        with pytest.raises(OAuthError) as refused:
            await grant(
                ctx, as_client(ctx, EXCHANGER), grant_type="refresh_token", refresh_token=refreshed.refresh_token
            )
        assert refused.value.error == "invalid_grant"


@asynccontextmanager
async def serving(config: ServerConfig) -> AsyncIterator[httpx.AsyncClient]:
    app = create_app(config)
    transport = httpx.ASGITransport(app=app)
    async with (
        app.router.lifespan_context(app),
        httpx.AsyncClient(transport=transport, base_url=config.issuer) as client,
    ):
        yield client


async def test_a_removed_users_session_and_tokens_stop_over_http(database_url: str) -> None:
    async with serving(make_config(database_url)) as http:
        tokens = await Browser(http).tokens()
        session = http.cookies[SESSION_COOKIE]
    async with serving(make_config(database_url, without_user=USERNAME)) as http:
        http.cookies.set(SESSION_COOKIE, session)
        silent = await http.get("/oauth2/authorize", params=web_authorize_params(prompt="none"))
        assert silent.status_code == 302
        assert "error=login_required" in silent.headers["location"]
        again = await http.get("/oauth2/authorize", params=web_authorize_params())
        assert again.status_code == 303
        assert again.headers["location"].startswith("/login")
        userinfo = await http.get("/userinfo", headers={"Authorization": f"Bearer {tokens['access_token']}"})
        assert userinfo.status_code == 401
        assert userinfo.json()["error"] == "invalid_token"
        refreshed = await http.post(
            "/oauth2/token",
            data={"grant_type": "refresh_token", "refresh_token": tokens["refresh_token"]},
            headers=basic_auth(),
        )
        assert refreshed.status_code == 400
        assert refreshed.json()["error"] == "invalid_grant"


async def test_a_removed_clients_token_fails_userinfo_over_http(database_url: str) -> None:
    async with serving(make_config(database_url)) as http:
        tokens = await Browser(http).tokens()
    async with serving(make_config(database_url, without_client=WEB_CLIENT)) as http:
        userinfo = await http.get("/userinfo", headers={"Authorization": f"Bearer {tokens['access_token']}"})
        assert userinfo.status_code == 401
        assert "no longer exists" in userinfo.json()["error_description"]
