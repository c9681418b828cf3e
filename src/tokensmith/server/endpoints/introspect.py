"""``POST /oauth2/introspect`` (RFC 7662): is this token active, and what does it say?

Only authenticated confidential clients may ask. Anything not active (unknown, expired, revoked, not ours, an
ID token) gets ``{"active": false}`` and nothing else, so the answer reveals nothing about why.
"""

from __future__ import annotations

from typing import Any

from starlette.requests import Request
from starlette.responses import Response

from tokensmith.errors import OAuthError
from tokensmith.server.access_tokens import active_access_token, looks_like_jwt
from tokensmith.server.client_auth import authenticate_client, require_confidential
from tokensmith.server.context import ServerContext
from tokensmith.server.digest import digest
from tokensmith.server.endpoints.forms import read_token_request
from tokensmith.server.endpoints.responses import no_store_json, oauth_error_response
from tokensmith.server.endpoints.runtime import runtime

INACTIVE: dict[str, Any] = {"active": False}


async def introspect_endpoint(request: Request) -> Response:
    rt = runtime(request)
    ctx = rt.ctx
    try:
        form = await read_token_request(request, ctx.config.max_request_bytes)
        client = await authenticate_client(request.headers.get("authorization"), form, ctx.config, rt.secrets)
        require_confidential(client, "introspection")
        token = form.require("token")
        form.get("token_type_hint")  # a hint only (RFC 7662 2.1); read so a repeated one is refused
    except OAuthError as error:
        return oauth_error_response(error)
    return no_store_json(await introspect(ctx, token))


async def introspect(ctx: ServerContext, token: str) -> dict[str, Any]:
    if looks_like_jwt(token):
        claims = await active_access_token(ctx, token)
        if claims is None:
            return INACTIVE
        body: dict[str, Any] = {"active": True, "token_type": "Bearer", **claims}
        if isinstance(body.get("scope"), list):
            body["scope"] = " ".join(str(s) for s in body["scope"])
        body.setdefault("username", claims.get("sub"))
        return body
    return await _introspect_refresh_token(ctx, token)


async def _introspect_refresh_token(ctx: ServerContext, token: str) -> dict[str, Any]:
    if len(token) > 512:
        return INACTIVE
    record = await ctx.store.get_refresh_token(digest(token))
    now = ctx.clock()
    if record is None or record.revoked_at is not None or record.used_at is not None or record.expires_at <= now:
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
