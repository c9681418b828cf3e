"""What the user-facing grants (authorization code, refresh token) issue: access token, ID token, refresh token."""

from __future__ import annotations

import uuid
from collections.abc import Sequence
from dataclasses import dataclass
from datetime import datetime

from tokensmith.config.server import REFRESH_TOKEN, ClientConfig
from tokensmith.server.context import ServerContext
from tokensmith.server.digest import digest, new_secret
from tokensmith.server.grants.base import TokenResponse
from tokensmith.store.records import RefreshTokenRecord

OPENID = "openid"


def token_audience(client: ClientConfig) -> tuple[str, ...]:
    """The ``aud`` of tokens issued to ``client``: its configured audiences, else its own id (as Spring does)."""
    return client.audiences or (client.registration.client_id,)


def new_grant_id() -> str:
    return uuid.uuid4().hex


@dataclass(frozen=True, slots=True)
class UserGrant:
    """A user's authorization of a client: what every token issued under it carries."""

    grant_id: str
    family_id: str
    subject: str
    scope: tuple[str, ...]
    auth_time: datetime | None
    nonce: str | None = None


async def issue_for_user(
    ctx: ServerContext,
    client: ClientConfig,
    grant: UserGrant,
    *,
    access_scope: Sequence[str] | None = None,
    refresh: bool = True,
) -> TokenResponse:
    """Issue the access token (scope ``access_scope``, default the grant's), an ID token when ``openid`` was
    granted, and a refresh token (full grant scope, same family) when the client may refresh and ``refresh``."""
    settings = client.token
    scope = tuple(access_scope) if access_scope is not None else grant.scope
    client_id = client.registration.client_id
    access = await ctx.tokens.issue_access_token(
        subject=grant.subject,
        client_id=client_id,
        audience=token_audience(client),
        scope=scope,
        ttl=settings.access_token_time_to_live,
        grant_id=grant.grant_id,
    )
    response = TokenResponse(access_token=access.token, expires_in=access.expires_in, scope=scope)
    if OPENID in scope:
        id_token = await ctx.tokens.issue_id_token(
            subject=grant.subject,
            client_id=client_id,
            ttl=settings.access_token_time_to_live,
            nonce=grant.nonce,
            auth_time=grant.auth_time,
            access_token=access.token,
            algorithm=settings.id_token_signature_algorithm,
            grant_id=grant.grant_id,
        )
        response.id_token = id_token.token
    if refresh and REFRESH_TOKEN in client.registration.authorization_grant_types:
        response.refresh_token = await save_refresh_token(ctx, client, grant)
    return response


async def save_refresh_token(ctx: ServerContext, client: ClientConfig, grant: UserGrant) -> str:
    """A new opaque refresh token; only its digest is stored."""
    token = new_secret()
    now = ctx.clock()
    await ctx.store.save_refresh_token(
        RefreshTokenRecord(
            token_hash=digest(token),
            family_id=grant.family_id,
            grant_id=grant.grant_id,
            client_id=client.registration.client_id,
            subject=grant.subject,
            scope=grant.scope,
            issued_at=now,
            expires_at=now + client.token.refresh_token_time_to_live,
            auth_time=grant.auth_time,
        )
    )
    return token
