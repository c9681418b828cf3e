"""``GET|POST /oauth2/authorize`` (RFC 6749 4.1.1, OpenID Connect Core 3.1.2): sign the user in, ask consent
when the client requires it (once per scope: what the user allowed is remembered, as Spring Authorization Server
does, until ``prompt=consent`` asks again or the user denies), then redirect back with a single-use code,
``state`` and ``iss`` (RFC 9207)."""

from __future__ import annotations

from collections.abc import Sequence
from urllib.parse import quote, urlencode

from starlette.requests import Request
from starlette.responses import RedirectResponse, Response

from tokensmith.errors import OAuthError
from tokensmith.server.core.authorization import (
    AuthorizationRequest,
    ClientRedirect,
    error_redirect,
    issue_authorization_code,
    resolve_client_redirect,
    success_redirect,
    validate_authorization_request,
)
from tokensmith.server.core.sessions import SESSION_COOKIE, csrf_matches, signed_in_session
from tokensmith.server.http.forms import read_form
from tokensmith.server.http.runtime import Runtime, runtime
from tokensmith.store.base import Store
from tokensmith.store.records import SessionRecord

# Fields of our own consent form, not part of the authorization request.
_CONSENT_FIELDS = ("consent_action", "csrf_token")
# Parameters that asked for a fresh sign-in; the login the user is sent to satisfies them.
_SATISFIED_BY_LOGIN = ("prompt", "max_age")


async def authorize_endpoint(request: Request) -> Response:
    rt = runtime(request)
    ctx = rt.ctx
    status = 302 if request.method == "GET" else 303
    try:
        if request.method == "GET":
            params: dict[str, list[str]] = {}
            for name, value in request.query_params.multi_items():
                params.setdefault(name, []).append(value)
        else:
            params = await read_form(request, ctx.config.max_request_bytes)
    except OAuthError as error:
        return _error_page(request, rt, error)
    consent_action = (params.pop("consent_action", None) or [""])[0]
    csrf_token = (params.pop("csrf_token", None) or [""])[0]

    try:
        target = resolve_client_redirect(params, ctx.config)
    except OAuthError as error:
        return _error_page(request, rt, error)
    try:
        auth_request = validate_authorization_request(params, target)
    except OAuthError as error:
        return _redirect_error(rt, target, error, status)

    now = ctx.clock()
    session = await signed_in_session(ctx.store, ctx.config, request.cookies.get(SESSION_COOKIE), now)
    if session is None or _needs_login(auth_request, session, now.timestamp()):
        if "none" in auth_request.prompt:
            return _redirect_error(rt, target, OAuthError("login_required", "the user is not signed in"), status)
        rt.metrics.authorizations.labels("login").inc()
        # Come back without prompt=login and max_age: the user is about to authenticate, and keeping them would
        # send the user from the login page to the login page forever (max_age=0 fails on any session).
        again = [(k, v) for k, values in params.items() if k not in _SATISFIED_BY_LOGIN for v in values]
        next_url = "/oauth2/authorize?" + urlencode(again)
        return RedirectResponse("/login?next=" + quote(next_url, safe=""), status_code=303)

    if auth_request.client.require_authorization_consent or "consent" in auth_request.prompt:
        client_id = auth_request.client.registration.client_id
        answered = csrf_matches(session.csrf_secret, csrf_token)
        if consent_action == "approve" and answered:
            await ctx.store.grant_authorization_consent(client_id, session.subject, frozenset(auth_request.scope), now)
        elif consent_action == "deny" and answered:
            # As Spring Authorization Server does: a refusal withdraws what was allowed before.
            await ctx.store.revoke_authorization_consent(client_id, session.subject)
            return _redirect_error(rt, target, OAuthError("access_denied", "the user denied access"), status)
        elif "consent" in auth_request.prompt or not await _consented(
            ctx.store, client_id, session.subject, auth_request.scope
        ):
            if "none" in auth_request.prompt:
                refusal = OAuthError("consent_required", "the client requires the user's consent")
                return _redirect_error(rt, target, refusal, status)
            return _consent_page(request, rt, auth_request, session, params)

    code = await issue_authorization_code(
        ctx.store, auth_request, subject=session.subject, auth_time=session.auth_time, now=now
    )
    rt.metrics.authorizations.labels("code").inc()
    return RedirectResponse(success_redirect(auth_request, code, ctx.issuer), status_code=status)


async def _consented(store: Store, client_id: str, subject: str, scopes: Sequence[str]) -> bool:
    """Whether the user allowed this client every scope asked for before (``openid`` needs no consent of its own,
    but a first consent all the same)."""
    consent = await store.get_authorization_consent(client_id, subject)
    return consent is not None and set(scopes) - {"openid"} <= consent.scopes


def _needs_login(auth_request: AuthorizationRequest, session: SessionRecord, now: float) -> bool:
    if "login" in auth_request.prompt:
        return True
    if auth_request.max_age is not None:
        return now - session.auth_time.timestamp() > auth_request.max_age
    return False


def _consent_page(
    request: Request,
    rt: Runtime,
    auth_request: AuthorizationRequest,
    session: SessionRecord,
    params: dict[str, list[str]],
) -> Response:
    registration = auth_request.client.registration
    return rt.page(
        request,
        "consent.html",
        client_name=registration.client_name or registration.client_id,
        subject=session.subject,
        scopes=auth_request.scope,
        # RFC 8707: the services its tokens will be for (those asked for, else the client's configured audiences);
        # none shown for a client whose tokens are only for itself.
        services=auth_request.resources or auth_request.client.audiences,
        params=[(k, v) for k, values in params.items() if k not in _CONSENT_FIELDS for v in values],
        csrf_token=session.csrf_secret,
    )


def _redirect_error(rt: Runtime, target: ClientRedirect, error: OAuthError, status: int) -> Response:
    rt.metrics.authorizations.labels(error.error).inc()
    return RedirectResponse(error_redirect(target, error, rt.ctx.issuer), status_code=status)


def _error_page(request: Request, rt: Runtime, error: OAuthError) -> Response:
    rt.metrics.authorizations.labels(error.error).inc()
    return rt.message(
        request,
        "This sign-in link is not valid",
        "The application that sent you here made an invalid request. Return to it and try again.",
        status_code=error.status_code if error.status_code != 401 else 400,
        detail=f"{error.error}: {error.description}",
    )
