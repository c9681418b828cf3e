"""Refresh tokens issued by a token exchange (RFC 8693 2.2.1), where the client's policy allows it.

Such a refresh token carries the exchanged context in ``RefreshTokenRecord.claims``: the audience, the user's
claims and the ``act`` chain, the lifetime bound and the lineage (``parent_jti``/``actor_jti`` of the subject and
actor tokens). Refreshing re-issues an access token with exactly that context, so a refresh never widens what the
exchange granted. Revoking the subject or actor token (or any token they were exchanged from) revokes the refresh
token in the same statement (``Store.revoke_token_lineage``), and every token a refresh issues names the original
subject token as its parent, so it is revoked with it too.
"""

from __future__ import annotations

import uuid
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from typing import Any

from tokensmith.config.server import ClientConfig
from tokensmith.errors import invalid_grant
from tokensmith.server.core.context import ServerContext
from tokensmith.server.core.digest import digest, new_secret
from tokensmith.server.core.grants.base import TokenResponse
from tokensmith.server.core.grants.issuance import FAMILY_STARTED_AT, family_expiry, family_started_at, token_type
from tokensmith.store.records import RefreshTokenRecord

# The key of the exchanged context inside RefreshTokenRecord.claims.
EXCHANGE_CONTEXT = "token_exchange"


@dataclass(frozen=True, slots=True)
class ExchangedContext:
    """What every access token refreshed from an exchange carries, besides subject and scope."""

    audience: tuple[str, ...]
    claims: dict[str, Any]  # the user's claims and `act`, as in the exchanged token
    not_after: datetime | None  # the subject/actor token's expiry, unless the policy lets tokens outlive it

    def to_claims(self) -> dict[str, Any]:
        not_after = int(self.not_after.timestamp()) if self.not_after is not None else None
        return {EXCHANGE_CONTEXT: {"aud": list(self.audience), "claims": self.claims, "not_after": not_after}}

    @classmethod
    def of(cls, record: RefreshTokenRecord) -> ExchangedContext | None:
        """The context of a refresh token a token exchange issued; None for any other refresh token."""
        raw = record.claims.get(EXCHANGE_CONTEXT)
        if not isinstance(raw, Mapping):
            return None
        not_after = raw.get("not_after")
        return cls(
            audience=tuple(raw.get("aud") or ()),
            claims=dict(raw.get("claims") or {}),
            not_after=datetime.fromtimestamp(not_after, UTC) if isinstance(not_after, int) else None,
        )


@dataclass(frozen=True, slots=True)
class ExchangeLineage:
    grant_id: str  # shared by the refresh token family and every access token issued under it
    family_id: str
    parent_jti: str | None
    actor_jti: str | None
    started_at: datetime | None = None  # the family's start; None: it starts now
    # The DPoP key the family's refresh tokens are bound to (the exchange bound its token to it); None: not bound.
    dpop_jkt: str | None = None


def new_exchange_lineage(parent_jti: str | None, actor_jti: str | None, dpop_jkt: str | None = None) -> ExchangeLineage:
    grant_id = uuid.uuid4().hex
    return ExchangeLineage(
        grant_id=grant_id, family_id=grant_id, parent_jti=parent_jti, actor_jti=actor_jti, dpop_jkt=dpop_jkt
    )


def refresh_expiry(client: ClientConfig, now: datetime, not_after: datetime | None, started_at: datetime) -> datetime:
    ttl = client.token_exchange.refresh_token_time_to_live or client.token.refresh_token_time_to_live
    expires_at = min(now + ttl, family_expiry(client, started_at))
    return min(expires_at, not_after) if not_after is not None else expires_at


async def save_exchange_refresh_token(
    ctx: ServerContext,
    client: ClientConfig,
    *,
    subject: str,
    scope: Sequence[str],
    context: ExchangedContext,
    lineage: ExchangeLineage,
) -> tuple[str, datetime]:
    """A new opaque refresh token for an exchanged context (only its digest is stored) and its expiry."""
    token = new_secret()
    now = ctx.clock()
    started_at = lineage.started_at or now
    expires_at = refresh_expiry(client, now, context.not_after, started_at)
    await ctx.store.save_refresh_token(
        RefreshTokenRecord(
            token_hash=digest(token),
            family_id=lineage.family_id,
            grant_id=lineage.grant_id,
            client_id=client.registration.client_id,
            subject=subject,
            scope=tuple(scope),
            issued_at=now,
            expires_at=expires_at,
            claims={**context.to_claims(), FAMILY_STARTED_AT: int(started_at.timestamp())},
            parent_jti=lineage.parent_jti,
            actor_jti=lineage.actor_jti,
            dpop_jkt=lineage.dpop_jkt,
        )
    )
    return token, expires_at


async def check_exchange_refresh(ctx: ServerContext, client: ClientConfig, record: RefreshTokenRecord) -> None:
    """Refuse a refresh the policy no longer allows, or whose subject/actor token was revoked.

    Revocation of the lineage already revokes the refresh token in the store; this read also covers a
    revocation that raced with the exchange (the subject token revoked while its refresh token was written).
    """
    if not client.token_exchange.issue_refresh_token:
        raise invalid_grant("this client's token-exchange policy no longer allows refresh tokens")
    for jti in (record.parent_jti, record.actor_jti):
        if jti is not None and await ctx.store.is_token_revoked(jti):
            await ctx.store.revoke_grant(record.grant_id, ctx.clock())
            raise invalid_grant("the token this refresh token was exchanged from has been revoked")


async def refresh_exchanged(
    ctx: ServerContext,
    client: ClientConfig,
    record: RefreshTokenRecord,
    context: ExchangedContext,
    *,
    access_scope: Sequence[str],
    rotate: bool,
    dpop_jkt: str | None = None,
) -> TokenResponse:
    """A new access token with the exchanged context (and, when rotating, the next refresh token)."""
    now = ctx.clock()
    if context.not_after is not None and context.not_after <= now:
        raise invalid_grant("the token this refresh token was exchanged from has expired")
    policy = client.token_exchange
    ttl: timedelta = policy.token_time_to_live or client.token.access_token_time_to_live
    issued = await ctx.tokens.issue_access_token(
        subject=record.subject,
        client_id=client.registration.client_id,
        audience=context.audience,
        scope=access_scope,
        ttl=ttl,
        extra_claims=context.claims,
        grant_id=record.grant_id,
        parent_jti=record.parent_jti,
        actor_jti=record.actor_jti,
        not_after=context.not_after,
        dpop_jkt=dpop_jkt,
    )
    response = TokenResponse(
        access_token=issued.token,
        expires_in=issued.expires_in,
        scope=tuple(access_scope),
        token_type=token_type(dpop_jkt),
    )
    if rotate:
        lineage = ExchangeLineage(
            record.grant_id,
            record.family_id,
            record.parent_jti,
            record.actor_jti,
            family_started_at(record),
            record.dpop_jkt,
        )
        response.refresh_token, _ = await save_exchange_refresh_token(
            ctx, client, subject=record.subject, scope=record.scope, context=context, lineage=lineage
        )
    return response
