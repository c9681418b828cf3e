"""The refresh token grant (RFC 6749 6) with rotation and reuse detection (RFC 9700 4.14.2).

Each use returns a new refresh token and spends the old one atomically in the database, after the new tokens are
written. Presenting a spent token means two parties hold it: the whole grant (every token and refresh token of the
family) is revoked.
A refresh token issued by a token exchange re-issues the exchanged context (see ``exchange_refresh.py``).

A family ends for good ``refresh-token-max-lifetime`` after it began (rotation never extends it), and at once
when its user or client is removed from the configuration: the grant is then revoked with its lineage.
"""

from __future__ import annotations

from tokensmith.config.server import REFRESH_TOKEN, ServerConfig
from tokensmith.errors import invalid_grant, invalid_scope
from tokensmith.server.core.context import GrantHandler, ServerContext
from tokensmith.server.core.digest import digest
from tokensmith.server.core.dpop import invalid_dpop_proof
from tokensmith.server.core.grants.base import AuthenticatedClient, TokenRequest, TokenResponse
from tokensmith.server.core.grants.exchange_refresh import ExchangedContext, check_exchange_refresh, refresh_exchanged
from tokensmith.server.core.grants.issuance import (
    UserGrant,
    family_expiry,
    family_started_at,
    issue_for_user,
    stored_claims_request,
    stored_resources,
)
from tokensmith.server.core.principals import is_user_token, removed_principal
from tokensmith.store.records import RefreshTokenRecord


def removed_refresh_principal(config: ServerConfig, record: RefreshTokenRecord) -> str | None:
    """Why the refresh token is void because its user or client left the configuration, or None."""
    exchanged = ExchangedContext.of(record)
    return removed_principal(
        config,
        subject=record.subject,
        client_id=record.client_id,
        # A user grant's subject is a local user; an exchanged one's only when it came from a user's token.
        for_user=exchanged is None or is_user_token(exchanged.claims),
    )


class RefreshTokenGrant(GrantHandler):
    grant_type = REFRESH_TOKEN

    async def __call__(self, request: TokenRequest, client: AuthenticatedClient, ctx: ServerContext) -> TokenResponse:
        token_hash = digest(request.require("refresh_token"))
        requested_scope = request.scopes()
        now = ctx.clock()

        # Check ownership before spending it, so another client cannot burn a token it has seen.
        record = await ctx.store.get_refresh_token(token_hash)
        if record is None or record.client_id != client.client_id:
            raise invalid_grant("the refresh token is invalid")
        if record.revoked_at is not None:
            raise invalid_grant("the refresh token was revoked")
        if record.expires_at <= now:
            raise invalid_grant("the refresh token has expired")
        if record.dpop_jkt is not None and record.dpop_jkt != request.dpop_jkt:
            # RFC 9449 5: a bound refresh token is used only with a proof by its key.
            raise invalid_dpop_proof("the refresh token is bound to a DPoP key: send a DPoP proof by that key")
        exchanged = ExchangedContext.of(record)
        removed = removed_refresh_principal(ctx.config, record)
        if removed is not None:
            await ctx.store.revoke_grant(record.grant_id, now)
            raise invalid_grant(f"the refresh token is revoked: {removed}")
        started_at = family_started_at(record)
        if family_expiry(client.config, started_at) <= now:
            raise invalid_grant(
                "the refresh token's grant has reached its maximum lifetime (refresh-token-max-lifetime); "
                "a new authorization is needed"
            )
        if requested_scope is not None:
            extra = [s for s in requested_scope if s not in record.scope]
            if extra:
                raise invalid_scope(f"a refresh may only narrow the granted scope; not granted: {' '.join(extra)}")
        access_scope = tuple(requested_scope) if requested_scope is not None else record.scope
        if exchanged is not None:
            await check_exchange_refresh(ctx, client.config, record)

        rotate = not client.config.token.reuse_refresh_tokens
        if record.used_at is not None:
            if rotate:
                await ctx.store.revoke_grant(record.grant_id, now)
                raise invalid_grant("the refresh token was already used; its grant is revoked")
            raise invalid_grant("the refresh token was already used")

        # The new tokens are written first and the presented token is spent last, atomically: a database that
        # fails on the way leaves it unspent, so the client's retry succeeds instead of looking like a replay.
        if exchanged is not None:
            response = await refresh_exchanged(
                ctx,
                client.config,
                record,
                exchanged,
                access_scope=access_scope,
                rotate=rotate,
                dpop_jkt=request.dpop_jkt,
            )
        else:
            grant = UserGrant(
                grant_id=record.grant_id,
                family_id=record.family_id,
                subject=record.subject,
                scope=record.scope,
                auth_time=record.auth_time,
                family_started_at=started_at,
                claims_request=stored_claims_request(record),
                refresh_jkt=record.dpop_jkt,
                resources=stored_resources(record),
            )
            # Without rotation the client keeps its refresh token (RFC 6749 6 lets the response omit it).
            response = await issue_for_user(
                ctx, client.config, grant, request, access_scope=access_scope, refresh=rotate
            )
        if rotate:
            consumed = await ctx.store.use_refresh_token(token_hash, now)
            if consumed.record is None or not consumed.first_use or consumed.record.revoked_at is not None:
                # Spent or revoked meanwhile (another party holds it): the grant goes, the new tokens with it.
                await ctx.store.revoke_grant(record.grant_id, now)
                if consumed.record is not None and not consumed.first_use:
                    raise invalid_grant("the refresh token was already used; its grant is revoked")
                raise invalid_grant(
                    "the refresh token is invalid" if consumed.record is None else "the refresh token was revoked"
                )
        return response
