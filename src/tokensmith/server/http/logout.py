"""``GET|POST /connect/logout``: OpenID Connect RP-Initiated Logout 1.0.

With a valid ``id_token_hint`` for the signed-in user the session ends at once; otherwise the user confirms
with a CSRF-protected form, so a third-party page cannot sign people out. ``post_logout_redirect_uri`` must
exactly match one the client registered, and gets ``state`` back.
"""

from __future__ import annotations

from dataclasses import dataclass

from starlette.requests import Request
from starlette.responses import RedirectResponse, Response

from tokensmith.config.server import ClientConfig
from tokensmith.errors import OAuthError, invalid_request
from tokensmith.server.core.access_tokens import is_access_token, verified_claims
from tokensmith.server.core.authorization import redirect_with
from tokensmith.server.core.context import ServerContext
from tokensmith.server.core.sessions import SESSION_COOKIE, csrf_matches, current_session, end_session
from tokensmith.server.http.forms import read_form
from tokensmith.server.http.login import secure_cookies
from tokensmith.server.http.runtime import Runtime, runtime

_PARAMS = ("id_token_hint", "client_id", "post_logout_redirect_uri", "state", "ui_locales", "logout_hint")


@dataclass(frozen=True, slots=True)
class LogoutRequest:
    hinted_subject: str | None
    redirect_uri: str | None
    state: str | None
    params: list[tuple[str, str]]


async def logout_endpoint(request: Request) -> Response:
    rt = runtime(request)
    ctx = rt.ctx
    try:
        if request.method == "GET":
            raw: dict[str, list[str]] = {}
            for name, value in request.query_params.multi_items():
                raw.setdefault(name, []).append(value)
        else:
            raw = await read_form(request, ctx.config.max_request_bytes)
        csrf_token = (raw.pop("csrf_token", None) or [""])[0]
        logout = await parse_logout_request(ctx, raw)
    except OAuthError as error:
        return rt.message(
            request,
            "Sign-out request not valid",
            "The application that sent you here made an invalid sign-out request.",
            status_code=400,
            detail=f"{error.error}: {error.description}",
        )

    cookie = request.cookies.get(SESSION_COOKIE)
    session = await current_session(ctx.store, cookie, ctx.clock())
    if session is not None:
        confirmed = request.method == "POST" and csrf_matches(session.csrf_secret, csrf_token)
        if not confirmed and logout.hinted_subject != session.subject:
            return rt.page(
                request, "logout.html", subject=session.subject, params=logout.params, csrf_token=session.csrf_secret
            )
        await end_session(ctx.store, cookie)
    return _signed_out(request, rt, logout)


def _signed_out(request: Request, rt: Runtime, logout: LogoutRequest) -> Response:
    if logout.redirect_uri is not None:
        response: Response = RedirectResponse(
            redirect_with(logout.redirect_uri, {"state": logout.state}), status_code=303
        )
    else:
        response = rt.message(request, "Signed out", "You have been signed out.")
    response.delete_cookie(SESSION_COOKIE, path="/", secure=secure_cookies(rt), httponly=True, samesite="lax")
    return response


async def parse_logout_request(ctx: ServerContext, raw: dict[str, list[str]]) -> LogoutRequest:
    params: dict[str, str] = {}
    for name, values in raw.items():
        if len(values) > 1:
            raise invalid_request(f"parameter {name!r} must not be sent more than once")
        if name in _PARAMS and values[0]:
            params[name] = values[0]

    client: ClientConfig | None = None
    subject: str | None = None
    hint = params.get("id_token_hint")
    if hint is not None:
        # An expired ID token is still a fine hint (RP-Initiated Logout 2): only signature and issuer count.
        claims = await verified_claims(ctx, hint)
        if claims is None or is_access_token(claims) or not isinstance(claims.get("aud"), str | list):
            raise invalid_request("id_token_hint is not an ID token issued by this server")
        audience = claims["aud"] if isinstance(claims["aud"], list) else [claims["aud"]]
        client = next((c for a in audience if (c := ctx.config.client_by_id(str(a))) is not None), None)
        subject = str(claims.get("sub"))
    client_id = params.get("client_id")
    if client_id is not None:
        named = ctx.config.client_by_id(client_id)
        if named is None or (client is not None and named is not client):
            raise invalid_request("client_id is unknown or differs from the id_token_hint audience")
        client = named

    redirect_uri = params.get("post_logout_redirect_uri")
    if redirect_uri is not None:
        if client is None:
            raise invalid_request("post_logout_redirect_uri needs id_token_hint or client_id")
        if redirect_uri not in client.registration.post_logout_redirect_uris:
            raise invalid_request("post_logout_redirect_uri is not registered for this client")
    return LogoutRequest(
        hinted_subject=subject,
        redirect_uri=redirect_uri,
        state=params.get("state"),
        params=sorted(params.items()),
    )
