"""What the user-facing grants (authorization code, refresh token) issue: access token, ID token, refresh token.

A refresh token family (every rotation of one grant) has an absolute lifetime: its tokens never expire later than
the family's start plus the client's ``refresh-token-max-lifetime``, however often they rotate. The start is kept
with each refresh token (``RefreshTokenRecord.claims``, :data:`FAMILY_STARTED_AT`).
"""

from __future__ import annotations

import uuid
from collections.abc import Sequence
from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import Any

from tokensmith.config.server import REFRESH_TOKEN, ClientConfig
from tokensmith.server.core.claims import (
    PASSWORD_ACR,
    PASSWORD_AMR,
    USERINFO_CLAIMS_CLAIM,
    id_token_user_claims,
    requested_claim_names,
)
from tokensmith.server.core.context import ServerContext
from tokensmith.server.core.digest import digest, new_secret
from tokensmith.server.core.grants.base import TokenRequest, TokenResponse, restricted_audience
from tokensmith.server.core.principals import USER_TOKEN_CLAIM
from tokensmith.store.records import RefreshTokenRecord

OPENID = "openid"
# The key of the family's start (seconds since the epoch) inside RefreshTokenRecord.claims.
FAMILY_STARTED_AT = "family_started_at"
# The key of the grant's `claims` request (OpenID Connect Core 5.5) inside RefreshTokenRecord.claims.
CLAIMS_REQUEST = "claims_request"
# The key of the resources the grant was authorized for (RFC 8707) inside RefreshTokenRecord.claims.
RESOURCES = "resources"


def family_started_at(record: RefreshTokenRecord) -> datetime:
    """When the refresh token's family began. A record written without it counts from the user's sign-in, or
    else from its own issue."""
    started = record.claims.get(FAMILY_STARTED_AT)
    if isinstance(started, int):
        return datetime.fromtimestamp(started, UTC)
    return record.auth_time or record.issued_at


def stored_claims_request(record: RefreshTokenRecord) -> dict[str, Any]:
    """The `claims` request a refresh token's grant was authorized with ({} when none)."""
    stored = record.claims.get(CLAIMS_REQUEST)
    return stored if isinstance(stored, dict) else {}


def stored_resources(record: RefreshTokenRecord) -> tuple[str, ...]:
    """The resources a refresh token's grant was authorized for (() when none were named)."""
    stored = record.claims.get(RESOURCES)
    return tuple(r for r in stored if isinstance(r, str)) if isinstance(stored, list) else ()


def family_expiry(client: ClientConfig, started_at: datetime) -> datetime:
    """The moment no refresh token of a family that began at ``started_at`` is valid any more."""
    return started_at + client.token.refresh_token_max_lifetime


def token_audience(client: ClientConfig) -> tuple[str, ...]:
    """The ``aud`` of tokens issued to ``client``: its configured audiences, else its own id (as Spring does)."""
    return client.audiences or (client.registration.client_id,)


def requested_audience(
    request: TokenRequest, client: ClientConfig, authorized: tuple[str, ...] = ()
) -> tuple[str, ...]:
    """The ``aud`` of an access token: the resources a user's authorization named (``authorized``), else the client's
    :func:`token_audience`; or those of them the token request names with ``resource`` (RFC 8707)."""
    return restricted_audience(request.resources(), authorized or token_audience(client))


def token_type(dpop_jkt: str | None) -> str:
    """The ``token_type`` of an access token bound to ``dpop_jkt`` (RFC 9449 5), or of a bearer token."""
    return "DPoP" if dpop_jkt is not None else "Bearer"


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
    # When the refresh token family began; None: it begins now (a first refresh token).
    family_started_at: datetime | None = None
    # The authorization request's `claims` parameter: claims asked for by name, for userinfo and the ID token.
    claims_request: dict[str, Any] = field(default_factory=dict)
    # The DPoP key the grant's refresh tokens are bound to (a public client's, RFC 9449 5); None: not bound.
    refresh_jkt: str | None = None
    # The resources the authorization request named (RFC 8707); (): the client's audiences.
    resources: tuple[str, ...] = ()


async def issue_for_user(
    ctx: ServerContext,
    client: ClientConfig,
    grant: UserGrant,
    request: TokenRequest,
    *,
    access_scope: Sequence[str] | None = None,
    refresh: bool = True,
) -> TokenResponse:
    """Issue the access token (for the grant's resources or those of them the ``request`` names, scope
    ``access_scope``, default the grant's; bound to the request's DPoP key when it sent a proof), an ID token when
    ``openid`` was granted, and a refresh token (full grant scope and resources, same family) when the client may
    refresh and ``refresh``: bound to ``grant.refresh_jkt``."""
    audience = requested_audience(request, client, grant.resources)  # invalid_target before anything is issued
    dpop_jkt = request.dpop_jkt
    settings = client.token
    scope = tuple(access_scope) if access_scope is not None else grant.scope
    client_id = client.registration.client_id
    # `auth_time` (RFC 9068 2.2.1) also marks the token as a local user's (server/core/principals.py).
    user_claims: dict[str, Any] = {}
    if grant.auth_time is not None:
        user_claims[USER_TOKEN_CLAIM] = int(grant.auth_time.timestamp())
    userinfo_names = requested_claim_names(grant.claims_request, "userinfo")
    if userinfo_names:
        user_claims[USERINFO_CLAIMS_CLAIM] = list(userinfo_names)
    access = await ctx.tokens.issue_access_token(
        subject=grant.subject,
        client_id=client_id,
        audience=audience,
        scope=scope,
        ttl=settings.access_token_time_to_live,
        extra_claims=user_claims or None,
        grant_id=grant.grant_id,
        dpop_jkt=dpop_jkt,
    )
    response = TokenResponse(
        access_token=access.token, expires_in=access.expires_in, scope=scope, token_type=token_type(dpop_jkt)
    )
    if OPENID in scope:
        requested = requested_claim_names(grant.claims_request, "id_token")
        id_claims = id_token_user_claims(ctx.config.user_by_name(grant.subject), requested)
        if grant.auth_time is not None:
            # The user signed in here, with a password (server/claims.py).
            id_claims.update(acr=PASSWORD_ACR, amr=list(PASSWORD_AMR))
        id_token = await ctx.tokens.issue_id_token(
            subject=grant.subject,
            client_id=client_id,
            ttl=settings.access_token_time_to_live,
            nonce=grant.nonce,
            auth_time=grant.auth_time,
            access_token=access.token,
            extra_claims=id_claims,
            algorithm=settings.id_token_signature_algorithm,
            grant_id=grant.grant_id,
        )
        response.id_token = id_token.token
    if refresh and REFRESH_TOKEN in client.registration.authorization_grant_types:
        response.refresh_token = await save_refresh_token(ctx, client, grant)
    return response


async def save_refresh_token(ctx: ServerContext, client: ClientConfig, grant: UserGrant) -> str:
    """A new opaque refresh token; only its digest is stored. It expires after the client's
    ``refresh-token-time-to-live``, and never after the end of its family's ``refresh-token-max-lifetime``."""
    token = new_secret()
    now = ctx.clock()
    started_at = grant.family_started_at or now
    claims: dict[str, Any] = {FAMILY_STARTED_AT: int(started_at.timestamp())}
    if grant.claims_request:
        claims[CLAIMS_REQUEST] = grant.claims_request
    if grant.resources:
        claims[RESOURCES] = list(grant.resources)
    await ctx.store.save_refresh_token(
        RefreshTokenRecord(
            token_hash=digest(token),
            family_id=grant.family_id,
            grant_id=grant.grant_id,
            client_id=client.registration.client_id,
            subject=grant.subject,
            scope=grant.scope,
            issued_at=now,
            expires_at=min(now + client.token.refresh_token_time_to_live, family_expiry(client, started_at)),
            auth_time=grant.auth_time,
            claims=claims,
            dpop_jkt=grant.refresh_jkt,
        )
    )
    return token
