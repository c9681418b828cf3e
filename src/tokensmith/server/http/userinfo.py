"""``GET|POST /userinfo`` (OpenID Connect Core 5.3): the signed-in user's claims, for an access token with
``openid`` scope. Errors follow RFC 6750 3 (``WWW-Authenticate: Bearer``)."""

from __future__ import annotations

from typing import Any

from starlette.requests import Request
from starlette.responses import Response

from tokensmith.config.server import UserConfig
from tokensmith.server.core.access_tokens import active_access_token
from tokensmith.server.core.principals import removed_token_principal
from tokensmith.server.http.responses import no_store_json
from tokensmith.server.http.runtime import runtime

# OpenID Connect Core 5.4: the claims each standard scope releases.
SCOPE_CLAIMS: dict[str, tuple[str, ...]] = {
    "profile": (
        "name",
        "family_name",
        "given_name",
        "middle_name",
        "nickname",
        "preferred_username",
        "profile",
        "picture",
        "website",
        "gender",
        "birthdate",
        "zoneinfo",
        "locale",
        "updated_at",
    ),
    "email": ("email", "email_verified"),
    "address": ("address",),
    "phone": ("phone_number", "phone_number_verified"),
}
_STANDARD = frozenset(claim for claims in SCOPE_CLAIMS.values() for claim in claims)


def bearer_error(error: str, description: str, status_code: int) -> Response:
    challenge = f'Bearer realm="tokensmith", error="{error}", error_description="{description}"'
    return no_store_json(
        {"error": error, "error_description": description},
        status_code=status_code,
        headers={"WWW-Authenticate": challenge},
    )


def released_claims(user: UserConfig, scope: set[str]) -> dict[str, Any]:
    """Standard claims for the granted scopes, plus the user's custom (non-standard) claims."""
    allowed = {claim for name in scope for claim in SCOPE_CLAIMS.get(name, ())}
    claims = {k: v for k, v in user.claims.items() if k in allowed or k not in _STANDARD}
    if "profile" in scope:
        claims.setdefault("preferred_username", user.username)
    claims["sub"] = user.username
    return claims


async def userinfo_endpoint(request: Request) -> Response:
    ctx = runtime(request).ctx
    scheme, _, token = request.headers.get("authorization", "").partition(" ")
    if scheme.lower() != "bearer" or not token.strip():
        return no_store_json(
            {"error": "invalid_request", "error_description": "a bearer access token is required"},
            status_code=401,
            headers={"WWW-Authenticate": 'Bearer realm="tokensmith"'},
        )
    claims = await active_access_token(ctx, token.strip())
    if claims is None:
        return bearer_error("invalid_token", "the access token is invalid, expired or revoked", 401)
    removed = removed_token_principal(ctx.config, claims)
    if removed is not None:
        return bearer_error("invalid_token", f"the access token is no longer valid: {removed}", 401)
    raw_scope = claims.get("scope", "")
    scope = set(raw_scope.split() if isinstance(raw_scope, str) else raw_scope)
    if "openid" not in scope:
        return bearer_error("insufficient_scope", "the access token lacks the openid scope", 403)
    user = ctx.config.user_by_name(str(claims.get("sub")))
    if user is None:
        return bearer_error("invalid_token", "the access token is not for a user", 401)
    return no_store_json(released_claims(user, scope))
