"""Token revocation (RFC 7009).

An access token is revoked with everything exchanged from it; a refresh token with its whole grant (RFC 7009 2.1
lets the server revoke the access tokens of the same grant). A client may revoke only its own tokens. An unknown
or already invalid token is no error: the client's goal, a token that no longer works, is met.
"""

from __future__ import annotations

from tokensmith.errors import OAuthError
from tokensmith.server.core.access_tokens import is_access_token, looks_like_jwt, verified_claims
from tokensmith.server.core.context import ServerContext
from tokensmith.server.core.digest import digest


def not_yours() -> OAuthError:
    return OAuthError("unauthorized_client", "the token was not issued to this client")


async def revoke(ctx: ServerContext, token: str, client_id: str) -> None:
    """Revoke ``token`` on behalf of ``client_id``; unauthorized_client when it was issued to another client."""
    now = ctx.clock()
    if looks_like_jwt(token):
        claims = await verified_claims(ctx, token)
        if claims is None or not is_access_token(claims):
            return
        if claims["client_id"] != client_id:
            raise not_yours()
        await ctx.store.revoke_token_lineage(claims["jti"], now)
        return
    if len(token) > 512:
        return
    token_hash = digest(token)
    record = await ctx.store.get_refresh_token(token_hash)
    if record is None:
        return
    if record.client_id != client_id:
        raise not_yours()
    await ctx.store.revoke_refresh_token(token_hash, now)
    await ctx.store.revoke_grant(record.grant_id, now)
