"""Token introspection (RFC 7662): what an authenticated confidential client may learn about a token.

An access token is described to any such client (resource servers introspect tokens issued to other clients, and a
JWT says as much to whoever holds it); a refresh token, a credential no resource server ever sees, only to the
client it was issued to (RFC 7662 4). Anything not active (unknown, expired, revoked, not ours, an ID token,
another client's refresh token, one whose user or client was removed) is ``{"active": false}`` and nothing else,
so the answer reveals nothing about why.
"""

from __future__ import annotations

from typing import Any

from tokensmith.server.core.access_tokens import active_access_token, looks_like_jwt
from tokensmith.server.core.context import ServerContext
from tokensmith.server.core.digest import digest
from tokensmith.server.core.dpop import bound_jkt
from tokensmith.server.core.grants.refresh_token import removed_refresh_principal
from tokensmith.server.core.principals import removed_token_principal

INACTIVE: dict[str, Any] = {"active": False}


async def introspect(ctx: ServerContext, token: str, client_id: str) -> dict[str, Any]:
    """What ``client_id`` may learn about ``token``."""
    if looks_like_jwt(token):
        claims = await active_access_token(ctx, token)
        if claims is None or removed_token_principal(ctx.config, claims) is not None:
            return INACTIVE
        # RFC 9449 6.2: a bound token introspects as DPoP, with its `cnf`.
        body: dict[str, Any] = {"active": True, "token_type": "DPoP" if bound_jkt(claims) else "Bearer", **claims}
        if isinstance(body.get("scope"), list):
            body["scope"] = " ".join(str(s) for s in body["scope"])
        body.setdefault("username", claims.get("sub"))
        return body
    return await _introspect_refresh_token(ctx, token, client_id)


async def _introspect_refresh_token(ctx: ServerContext, token: str, client_id: str) -> dict[str, Any]:
    if len(token) > 512:
        return INACTIVE
    record = await ctx.store.get_refresh_token(digest(token))
    now = ctx.clock()
    if record is None or record.revoked_at is not None or record.used_at is not None or record.expires_at <= now:
        return INACTIVE
    if record.client_id != client_id or removed_refresh_principal(ctx.config, record) is not None:
        return INACTIVE
    return {
        "active": True,
        "token_type": "refresh_token",
        "client_id": record.client_id,
        "sub": record.subject,
        "username": record.subject,
        "scope": " ".join(record.scope),
        "iss": ctx.issuer,
        "iat": int(record.issued_at.timestamp()),
        "exp": int(record.expires_at.timestamp()),
    }
