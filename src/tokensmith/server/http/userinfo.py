"""``GET|POST /userinfo`` (OpenID Connect Core 5.3): the signed-in user's claims, for an access token with
``openid`` scope. The token comes in the ``Authorization: Bearer`` header (RFC 6750 2.1) or, on POST, as the
form-encoded ``access_token`` body parameter (2.2); never both. A DPoP-bound token (RFC 9449 7) comes as
``Authorization: DPoP`` with a proof in the ``DPoP`` header, and is refused as Bearer. Errors follow RFC 6750 3
(``WWW-Authenticate: Bearer``) and RFC 9449 7.1."""

from __future__ import annotations

from starlette.requests import Request
from starlette.responses import Response

from tokensmith.errors import OAuthError
from tokensmith.server.core.access_tokens import active_access_token
from tokensmith.server.core.claims import USERINFO_CLAIMS_CLAIM, released_claims
from tokensmith.server.core.dpop import bound_jkt
from tokensmith.server.core.principals import removed_token_principal
from tokensmith.server.http.forms import FORM_TYPE, read_form
from tokensmith.server.http.responses import no_store_json
from tokensmith.server.http.runtime import runtime


def bearer_error(error: str, description: str, status_code: int) -> Response:
    challenge = f'Bearer realm="tokensmith", error="{error}", error_description="{description}"'
    return no_store_json(
        {"error": error, "error_description": description},
        status_code=status_code,
        headers={"WWW-Authenticate": challenge},
    )


async def userinfo_endpoint(request: Request) -> Response:
    ctx = runtime(request).ctx
    try:
        token, scheme = await _presented_token(request, ctx.config.max_request_bytes)
    except OAuthError as error:
        return bearer_error(error.error, error.description, 400 if error.status_code == 401 else error.status_code)
    if token is None:
        return no_store_json(
            {"error": "invalid_request", "error_description": "a bearer access token is required"},
            status_code=401,
            headers={"WWW-Authenticate": 'Bearer realm="tokensmith"'},
        )
    claims = await active_access_token(ctx, token)
    if claims is None:
        return bearer_error("invalid_token", "the access token is invalid, expired or revoked", 401)
    jkt = bound_jkt(claims)
    if scheme == "bearer" and jkt is not None:
        return bearer_error("invalid_token", "the access token is DPoP-bound: send it as DPoP with a proof", 401)
    if scheme == "dpop":
        if jkt is None:
            return bearer_error("invalid_token", "the access token is not DPoP-bound: send it as Bearer", 401)
        try:
            proof = await ctx.dpop.resource_request_proof(
                request.headers.getlist("dpop"),
                method=request.method,
                uri=f"{ctx.issuer}/userinfo",
                access_token=token,
            )
        except OAuthError as error:
            return dpop_error(error, ctx.dpop.algorithms)
        if proof.jkt != jkt:
            return bearer_error("invalid_token", "the access token is bound to another key than the proof's", 401)
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
    requested = claims.get(USERINFO_CLAIMS_CLAIM)
    names = [name for name in requested if isinstance(name, str)] if isinstance(requested, list) else []
    return no_store_json(released_claims(user, scope, names))


def dpop_error(error: OAuthError, algorithms: frozenset[str]) -> Response:
    """RFC 9449 7.1: a refused proof is a 401 with a DPoP challenge (and the server's nonce when it asks for one)."""
    challenge = f'DPoP algs="{" ".join(sorted(algorithms))}", error="{error.error}"'
    return no_store_json(error.to_dict(), status_code=401, headers={**error.headers, "WWW-Authenticate": challenge})


async def _presented_token(request: Request, limit: int) -> tuple[str | None, str]:
    """The access token from the Authorization header or a form-encoded POST body (None when neither has one),
    and its scheme (``bearer`` or ``dpop``). Both at once, another scheme, or a repeated body parameter is
    invalid_request (RFC 6750 2)."""
    header = request.headers.get("authorization")
    in_header: str | None = None
    scheme = "bearer"
    if header is not None:
        scheme, _, value = header.partition(" ")
        scheme = scheme.lower()
        if scheme not in ("bearer", "dpop") or not value.strip():
            return None, "bearer"
        in_header = value.strip()
    in_body: str | None = None
    media_type = request.headers.get("content-type", "").split(";", 1)[0].strip().lower()
    if request.method == "POST" and media_type == FORM_TYPE:
        form = await read_form(request, limit)
        values = form.get("access_token")
        if values:
            if len(values) > 1:
                raise OAuthError("invalid_request", "access_token must not be sent more than once")
            in_body = values[0] or None
    if in_header is not None and in_body is not None:
        raise OAuthError("invalid_request", "send the access token in the Authorization header or the body, not both")
    return in_header or in_body, scheme
