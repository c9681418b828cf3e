"""The client app of the article's section 6 (port 8080): log in with OpenID Connect, call user-service.

``/`` logs the user in (authorization code + PKCE at the authorization server) and shows the subject and the
authorized party; ``/api/user/message`` calls user-service with the user's access token and shows the answer
HTML-escaped, as the article's ``ClientController`` does, plus both tokens decoded side by side.

In the DPoP variant (``dpop=True``) the app holds a DPoP key: its access tokens are bound to it (RFC 9449) and each
call to user-service sends ``Authorization: DPoP`` with a fresh proof by it.
"""

from __future__ import annotations

import secrets
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from datetime import UTC, datetime, timedelta
from typing import Any, Final

import httpx
from starlette.applications import Starlette
from starlette.requests import Request
from starlette.responses import HTMLResponse, RedirectResponse, Response
from starlette.routing import Route

from tokensmith.client import DPoPKey
from tokensmith.demo import pages
from tokensmith.demo.oidc_rp import (
    LoginError,
    ProviderUnavailable,
    RefreshedTokens,
    RelyingParty,
    RelyingPartyConfig,
    new_pending_login,
)
from tokensmith.demo.sessions import COOKIE_NAME, Session, SessionStore
from tokensmith.demo.settings import ClientAppSettings
from tokensmith.demo.token_view import NotAJWT, TokenView, view_token

MODES = ("impersonation", "delegation", "transaction-token")
HTTP_TIMEOUT_SECONDS = 10.0
# An access token this close to its expiry is refreshed before use, so that it does not expire on its way through
# user-service (Spring's OAuth2AuthorizedClientManager uses the same one-minute clock skew).
REFRESH_AHEAD: Final = timedelta(seconds=60)


class ClientApp:
    """The routes, over one relying party, one session store and one HTTP client."""

    def __init__(self, settings: ClientAppSettings, http: httpx.AsyncClient, dpop: DPoPKey | None = None) -> None:
        registration = settings.registration
        self.settings = settings
        self.http = http
        self.dpop = dpop
        self.sessions = SessionStore()
        self.rp = RelyingParty(
            RelyingPartyConfig(
                issuer=settings.issuer,
                client_id=registration.client_id,
                client_secret=registration.client_secret or "",
                redirect_uri=registration.redirect_uri or "",
                scopes=registration.scope,
                post_logout_redirect_uri=settings.post_logout_redirect_uri,
            ),
            http,
            dpop,
        )

    def _session(self, request: Request) -> Session | None:
        return self.sessions.get(request.cookies.get(COOKIE_NAME))

    @staticmethod
    def _with_cookie(response: Response, session: Session) -> Response:
        response.set_cookie(COOKIE_NAME, session.sid, httponly=True, samesite="lax", path="/")
        return response

    async def _start_login(self, request: Request, return_to: str) -> Response:
        session = self._session(request) or self.sessions.create()
        pending = new_pending_login(return_to)
        try:
            url = await self.rp.authorization_url(pending)
        except ProviderUnavailable as exc:
            return _error(503, "Authorization server unavailable", str(exc))
        except LoginError as exc:
            return _error(502, "Login is not possible", str(exc))
        session.remember(pending)
        return self._with_cookie(RedirectResponse(url, status_code=302), session)

    async def home(self, request: Request) -> Response:
        session = self._session(request)
        if session is None or not session.logged_in:
            return await self._start_login(request, "/")
        return HTMLResponse(pages.home_page(session.id_claims, session.csrf_token, dpop=self.dpop is not None))

    async def callback(self, request: Request) -> Response:
        params = dict(request.query_params)
        session = self._session(request)
        pending = session.pending.pop(params.get("state", ""), None) if session is not None else None
        if session is None or pending is None:
            return _error(400, "Unknown login", "This login is unknown or has expired; please start again.")
        try:
            result = await self.rp.redeem(pending, params)
        except ProviderUnavailable as exc:
            return _error(503, "Authorization server unavailable", str(exc))
        except LoginError as exc:
            return _error(400, "Login failed", str(exc))
        # A fresh session id after login, so an id planted before login is worthless (session fixation).
        self.sessions.delete(session.sid)
        fresh = self.sessions.create()
        fresh.access_token, fresh.id_token, fresh.id_claims = result.access_token, result.id_token, result.id_claims
        fresh.refresh_token = result.refresh_token
        return self._with_cookie(RedirectResponse(pending.return_to, status_code=302), fresh)

    async def user_message(self, request: Request) -> Response:
        mode = request.query_params.get("mode", "impersonation")
        if mode not in MODES:
            return _error(400, "Unknown mode", f"mode must be one of {', '.join(MODES)}")
        here = request.url.path + (f"?{request.url.query}" if request.url.query else "")
        session = self._session(request)
        if session is None or session.access_token is None:
            return await self._start_login(request, here)
        if _expires_within(session.access_token, REFRESH_AHEAD):
            refusal = await self._refresh(request, session, here)
            if refusal is not None:
                return refusal
        url = self.settings.target_resource_server_url
        headers = {"Authorization": f"Bearer {session.access_token}", "Accept": "application/json"}
        if self.dpop is not None:
            headers["Authorization"] = f"DPoP {session.access_token}"
            headers["DPoP"] = self.dpop.proof("GET", url, access_token=session.access_token)
        try:
            response = await self.http.get(
                url, params={"mode": mode} if mode != "impersonation" else None, headers=headers
            )
        except httpx.HTTPError as exc:
            return _error(
                503, "user-service unavailable", f"user-service did not answer ({type(exc).__name__}).", logged_in=True
            )
        body = _json_object(response)
        if response.status_code == 200:
            return self._render_message(session, body, mode)
        if response.status_code == 401:
            session.sign_out_locally()  # the token is no good: the next visit logs in afresh
        return _map_failure(response, body)

    async def _refresh(self, request: Request, session: Session, here: str) -> Response | None:
        """Replace the session's access token, about to expire, by a refresh grant, as Spring's client does; None once
        it is replaced. Without a refresh token, or when the authorization server refuses it, the user logs in
        again, which the authorization server's session usually makes a silent round trip."""
        stale = session.access_token
        async with session.refreshing:
            if session.access_token != stale:
                # Another request of this session got there first: it refreshed the token, or had to sign out.
                if session.access_token is not None:
                    return None
            elif session.refresh_token is not None:
                tokens: RefreshedTokens | None
                try:
                    tokens = await self.rp.refresh(session.refresh_token, str(session.id_claims.get("sub", "")))
                except ProviderUnavailable as exc:
                    return _error(503, "Authorization server unavailable", str(exc), logged_in=True)
                except LoginError:
                    tokens = None  # refused (expired, revoked, used before) or unusable: log in afresh
                if tokens is not None:
                    session.access_token = tokens.access_token
                    if tokens.refresh_token is not None:
                        session.refresh_token = tokens.refresh_token
                    if tokens.id_token is not None and tokens.id_claims is not None:
                        session.id_token, session.id_claims = tokens.id_token, tokens.id_claims
                    return None
            session.sign_out_locally()
        return await self._start_login(request, here)

    def _render_message(self, session: Session, body: dict[str, Any], mode: str) -> Response:
        message = body.get("message")
        if not isinstance(message, str) or session.access_token is None:
            return _error(502, "Unexpected answer", "user-service answered without a message.", logged_in=True)
        try:
            original = view_token(session.access_token)
        except NotAJWT:
            original = TokenView(header={}, claims={})
        exchanged = TokenView.from_dict(body.get("exchanged_token"))
        return HTMLResponse(
            pages.message_page(message, original, exchanged, mode, session.csrf_token, dpop=self.dpop is not None)
        )

    async def logout(self, request: Request) -> Response:
        session = self._session(request)
        form = await request.form()
        if session is None or not secrets.compare_digest(str(form.get("csrf_token", "")), session.csrf_token):
            return _error(403, "Forbidden", "The logout request is not from this session's page.")
        self.sessions.delete(session.sid)
        target = None
        if session.id_token is not None:
            target = await self.rp.logout_url(session.id_token)
        response = RedirectResponse(target or "/logged-out", status_code=303)
        response.delete_cookie(COOKIE_NAME, path="/")
        return response

    async def logged_out(self, request: Request) -> Response:
        return HTMLResponse(pages.logged_out_page())


def _expires_within(access_token: str, margin: timedelta) -> bool:
    try:
        expires_at = view_token(access_token).expires_at
    except NotAJWT:
        return False  # an opaque token: user-service will say whether it is still good
    return expires_at is not None and expires_at <= datetime.now(UTC) + margin


def _json_object(response: httpx.Response) -> dict[str, Any]:
    try:
        body = response.json()
    except ValueError:
        return {}
    return body if isinstance(body, dict) else {}


def _error(status: int, title: str, detail: str, *, logged_in: bool = False) -> HTMLResponse:
    return HTMLResponse(pages.error_page(status, title, detail, logged_in=logged_in), status_code=status)


def _map_failure(response: httpx.Response, body: dict[str, Any]) -> Response:
    """user-service's error JSON (RFC 6749/6750 shape) -> a page that says what happened, never a trace."""
    description = str(body.get("error_description") or body.get("error") or f"HTTP {response.status_code}")
    if response.status_code == 401:
        return _error(401, "Token refused", f"user-service refused your token: {description}")
    if response.status_code == 403:
        return _error(403, "Not allowed", f"user-service refused the call: {description}", logged_in=True)
    if response.status_code == 503:
        return _error(
            503, "Service unavailable", f"user-service could not complete the call: {description}", logged_in=True
        )
    return _error(502, "Bad gateway", f"user-service failed: {description}", logged_in=True)


def create_client_app(
    settings: ClientAppSettings, transport: httpx.AsyncBaseTransport | None = None, *, dpop: bool = False
) -> Starlette:
    # trust_env=False: the demo's calls stay on this machine, whatever proxy the environment names.
    http = httpx.AsyncClient(timeout=HTTP_TIMEOUT_SECONDS, trust_env=False, transport=transport)
    client_app = ClientApp(settings, http, DPoPKey() if dpop else None)

    @asynccontextmanager
    async def lifespan(app: Starlette) -> AsyncIterator[None]:
        yield
        await http.aclose()

    routes = [
        Route("/", client_app.home),
        Route(f"/login/oauth2/code/{settings.registration_id}", client_app.callback),
        Route("/api/user/message", client_app.user_message),
        Route("/logout", client_app.logout, methods=["POST"]),
        Route("/logged-out", client_app.logged_out),
    ]
    app = Starlette(routes=routes, lifespan=lifespan)
    app.state.client_app = client_app
    return app
