"""Validating access tokens this server issued (introspection, userinfo, revocation).

A token is active when its signature verifies with one of our keys, it names us as issuer, it is within its
validity period and it has not been revoked (directly, or through the grant or exchange lineage it belongs to).
"""

from __future__ import annotations

from typing import Any

from tokensmith import jose
from tokensmith.server.core.context import ServerContext


def looks_like_jwt(token: str) -> bool:
    return token.count(".") == 2


async def verified_claims(ctx: ServerContext, token: str) -> dict[str, Any] | None:
    """The claims of a JWT signed by this server with our issuer, whatever its expiry; None otherwise."""
    if not looks_like_jwt(token):
        return None
    try:
        verified = await ctx.keys.verify_or_refresh(token)
    except jose.InvalidJWT:
        return None
    if verified.claims.get("iss") != ctx.issuer:
        return None
    return verified.claims


def is_access_token(claims: dict[str, Any]) -> bool:
    # RFC 9068 access tokens carry `client_id`; ID tokens carry `azp` instead.
    return isinstance(claims.get("client_id"), str) and isinstance(claims.get("jti"), str)


async def active_access_token(ctx: ServerContext, token: str) -> dict[str, Any] | None:
    """The claims of an active access token issued by this server, or None."""
    claims = await verified_claims(ctx, token)
    if claims is None or not is_access_token(claims):
        return None
    now = ctx.clock().timestamp()
    skew = ctx.config.tokens.clock_skew.total_seconds()
    exp, nbf = claims.get("exp"), claims.get("nbf")
    if not isinstance(exp, int | float) or exp <= now:
        return None
    if isinstance(nbf, int | float) and nbf > now + skew:
        return None
    if await ctx.store.is_token_revoked(claims["jti"]):
        return None
    return claims
