"""The login page: ``GET /login`` shows the form, ``POST /login`` checks the password and starts a session.

CSRF: the form carries a random token that must equal the one in a cookie set with the form (double submit);
a cross-site page can make a browser post the form but cannot read or set that cookie.
"""

from __future__ import annotations

import logging
from urllib.parse import parse_qs, urlsplit

from starlette.requests import Request
from starlette.responses import RedirectResponse, Response

from tokensmith.errors import OAuthError
from tokensmith.server.core.authorization import MAX_RETURN_URL_CHARS
from tokensmith.server.core.digest import new_secret
from tokensmith.server.core.sessions import (
    LOGIN_CSRF_COOKIE,
    SESSION_COOKIE,
    csrf_matches,
    end_session,
    signed_in_session,
    start_session,
)
from tokensmith.server.http.forms import read_form
from tokensmith.server.http.runtime import Runtime, client_address, runtime

# Sign-in outcomes for the operator. A name is logged only when it is a configured user's: an unknown "name" may
# be a password typed into the wrong field.
logger = logging.getLogger("tokensmith.login")

# Only the authorization endpoint is a valid place to return to: anything else would be an open redirect.
_SAFE_NEXT_PREFIX = "/oauth2/authorize"
_MAX_FIELD = 1024


def safe_next(value: str | None) -> str:
    if value and value.startswith(_SAFE_NEXT_PREFIX) and "\\" not in value and len(value) <= MAX_RETURN_URL_CHARS:
        return value
    return ""


def secure_cookies(rt: Runtime) -> bool:
    # Behind an HTTPS issuer the cookies are always Secure, whatever the setting says: a session id must never
    # travel in clear text because someone forgot a flag.
    config = rt.ctx.config
    return config.login.secure_cookies or config.issuer.startswith("https://")


def set_cookie(response: Response, rt: Runtime, name: str, value: str, max_age: int | None) -> None:
    response.set_cookie(
        name,
        value,
        max_age=max_age,
        path="/",
        httponly=True,
        samesite="lax",
        secure=secure_cookies(rt),
    )


def login_form(
    request: Request,
    rt: Runtime,
    *,
    next_url: str,
    error: str | None = None,
    username: str = "",
    status_code: int = 200,
) -> Response:
    csrf_token = new_secret()
    client_name = _client_name(rt, next_url)
    response = rt.page(
        request,
        "login.html",
        status_code=status_code,
        csrf_token=csrf_token,
        next=next_url,
        error=error,
        username=username,
        client_name=client_name,
    )
    set_cookie(response, rt, LOGIN_CSRF_COOKIE, csrf_token, max_age=3600)
    return response


def _client_name(rt: Runtime, next_url: str) -> str | None:
    client_ids = parse_qs(urlsplit(next_url).query).get("client_id") if next_url else None
    client = rt.ctx.config.client_by_id(client_ids[0]) if client_ids else None
    if client is None:
        return None
    return client.registration.client_name or client.registration.client_id


async def login_page(request: Request) -> Response:
    rt = runtime(request)
    return login_form(request, rt, next_url=safe_next(request.query_params.get("next")))


async def login_submit(request: Request) -> Response:
    rt = runtime(request)
    ctx = rt.ctx
    try:
        form = await read_form(request, ctx.config.max_request_bytes)
    except OAuthError as error:
        return rt.message(request, "Sign-in failed", error.description, status_code=error.status_code)

    def field(name: str, limit: int = _MAX_FIELD) -> str:
        values = form.get(name)
        return values[0][:limit] if values and len(values) == 1 else ""

    # Not cut to _MAX_FIELD: a cut authorization URL would silently lose parameters (state, nonce, PKCE).
    next_url = safe_next(field("next", MAX_RETURN_URL_CHARS + 1) or None)
    username = field("username").strip()
    password = field("password")
    if not csrf_matches(request.cookies.get(LOGIN_CSRF_COOKIE), field("csrf_token")):
        return login_form(
            request,
            rt,
            next_url=next_url,
            username=username,
            status_code=400,
            error="Your sign-in form expired. Please try again.",
        )
    address = client_address(request)
    admitted = await rt.login_throttle.attempt(username, address)
    if admitted is None:
        rt.metrics.logins.labels("throttled").inc()
        logger.warning("sign-in throttled from %s", address)
        return login_form(
            request,
            rt,
            next_url=next_url,
            username=username,
            status_code=429,
            error="Too many failed attempts. Please wait a few minutes and try again.",
        )
    user = ctx.config.user_by_name(username) if username else None
    # Always verify, also for an unknown user: the checker spends the same time on every failure.
    verified = await rt.passwords.verify(user, password)
    if user is None or not verified:
        rt.metrics.logins.labels("failure").inc()
        logger.info("sign-in refused for %s from %s", repr(user.username) if user else "an unknown user", address)
        return login_form(
            request,
            rt,
            next_url=next_url,
            username=username,
            status_code=401,
            error="The username or password is incorrect.",
        )
    await rt.login_throttle.succeeded(admitted)
    rt.metrics.logins.labels("success").inc()
    logger.info("signed in: %r from %s", user.username, address)
    # A new session id on every sign-in (no session fixation), and the browser's previous session ends with it.
    await end_session(ctx.store, request.cookies.get(SESSION_COOKIE))
    lifetime = ctx.config.login.session_time_to_live
    session_id = await start_session(ctx.store, user.username, now=ctx.clock(), time_to_live=lifetime)
    target = next_url or "/login/done"
    response = RedirectResponse(target, status_code=303)
    set_cookie(response, rt, SESSION_COOKIE, session_id, max_age=int(lifetime.total_seconds()))
    response.delete_cookie(LOGIN_CSRF_COOKIE, path="/", secure=secure_cookies(rt), httponly=True, samesite="lax")
    return response


async def signed_in_page(request: Request) -> Response:
    """Where a login without an authorization request lands."""
    rt = runtime(request)
    ctx = rt.ctx
    session = await signed_in_session(ctx.store, ctx.config, request.cookies.get(SESSION_COOKIE), ctx.clock())
    if session is None:
        return login_form(request, rt, next_url="")
    return rt.message(request, "Signed in", f"You are signed in as {session.subject}.")
