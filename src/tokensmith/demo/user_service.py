"""user-service (port 8081): the article's ``UserController``, both resource server and OAuth 2.0 client.

``GET /user/message`` accepts tokens aimed at ``user-service`` (:mod:`tokensmith.resource`), exchanges the incoming
token through registration ``my-message-service`` (:class:`tokensmith.client.TokenExchanger`, the counterpart of
Spring's ``OAuth2AuthorizedClientManager``) and calls message-service with the new token.

It answers with message-service's text, as in the article. Asked for ``application/json`` it also returns the
exchanged token decoded (header and claims, never the token), so the client app can show what the exchange changed.
With ``?mode=delegation`` it sends its own client-credentials token as the ``actor_token`` (the result has ``act``).
With ``?mode=transaction-token`` (when ``transaction-tokens`` is configured) it is the edge of a trust domain: it
exchanges the incoming token for a Transaction Token and calls message-service with it in the ``Txn-Token`` header.

In the DPoP variant (``dpop=True``) it takes DPoP-bound tokens only (a proof by the caller's key with each), holds a
DPoP key of its own, exchanges with a proof by it (the exchanged token is bound to user-service's key, RFC 9449) and
calls message-service with ``Authorization: DPoP`` and a fresh proof.
"""

# No `from __future__ import annotations`: FastAPI must see the dependency objects the handlers close over.

from typing import Annotated, Literal

import httpx
from fastapi import Depends, FastAPI, Query, Request
from fastapi.responses import JSONResponse, PlainTextResponse, Response

from tokensmith.client import (
    AuthorizationServerUnavailable,
    DiscoveryError,
    DPoPKey,
    IssuedToken,
    TokenExchanger,
    TokenRequestError,
    TransactionTokenMinter,
    txn_token_headers,
)
from tokensmith.demo.service_app import resource_server_app
from tokensmith.demo.service_errors import error_response
from tokensmith.demo.settings import UserServiceSettings
from tokensmith.demo.token_view import NotAJWT, view_token
from tokensmith.resource import DPoPChecker, DPoPMode, Principal
from tokensmith.resource.fastapi import publish_resource_metadata, require_token

HTTP_TIMEOUT_SECONDS = 10.0
# httpcore looks at every pooled connection (a readability poll of its socket) on each request, so a pool as large
# as the number of concurrent callers costs more CPU per call than it saves in waiting: under the benchmark's 32
# concurrent requests, 8 connections to message-service and the authorization server gave about a third more
# requests/s and a quarter less CPU per request than httpx's default of 100 (docs/performance.md).
DOWNSTREAM_CONNECTIONS = httpx.Limits(max_connections=8, max_keepalive_connections=8)
Mode = Literal["impersonation", "delegation", "transaction-token"]


class DownstreamFailure(Exception):
    """A step after validation failed; carries the JSON error user-service answers with."""

    def __init__(self, status: int, error: str, description: str) -> None:
        super().__init__(description)
        self.status = status
        self.error = error
        self.description = description


class UserService:
    def __init__(self, settings: UserServiceSettings, http: httpx.AsyncClient, dpop: DPoPKey | None = None) -> None:
        self.settings = settings
        self.http = http
        # With a DPoP key every token it obtains (the exchanged one, the actor token) is bound to that key.
        self.dpop = dpop
        self.exchanger = TokenExchanger(settings.client, http=http, dpop=dpop)

    async def exchange(self, principal: Principal, mode: Mode, request: Request) -> IssuedToken:
        """The article's ``authorizedClientManager.authorize(...)``: the incoming token, exchanged."""
        try:
            if mode == "transaction-token":
                return await self.transaction_token(principal, request)
            actor_token = None
            if mode == "delegation":
                actor = await self.exchanger.client_credentials(self.settings.actor_registration)
                actor_token = actor.access_token
            return await self.exchanger.exchange(
                principal.token, registration=self.settings.exchange_registration, actor_token=actor_token
            )
        except AuthorizationServerUnavailable:
            raise DownstreamFailure(
                503,
                "temporarily_unavailable",
                "the authorization server is unavailable, so your token could not be exchanged; try again shortly",
            ) from None
        except TokenRequestError as exc:
            detail = f"{exc.error}: {exc.error_description}" if exc.error_description else exc.error
            raise DownstreamFailure(
                502, "exchange_refused", f"the authorization server refused the exchange ({detail})"
            ) from None
        except DiscoveryError as exc:
            raise DownstreamFailure(
                502, "exchange_failed", f"the authorization server's metadata is unusable: {exc}"
            ) from None

    async def transaction_token(self, principal: Principal, request: Request) -> IssuedToken:
        """A Transaction Token for this call: the user's token as subject, where and what as context."""
        edge = self.settings.transaction_tokens
        if edge is None:
            raise DownstreamFailure(400, "invalid_request", "this user-service has no transaction-tokens settings")
        minter = TransactionTokenMinter(self.exchanger, registration=edge.registration, trust_domain=edge.trust_domain)
        return await minter.mint(
            principal.token,
            scope=edge.scope,
            request_context={"req_ip": request.client.host if request.client else None, "transport": "http"},
            request_details={"method": request.method, "path": request.url.path},
        )

    async def call_message_service(self, token: IssuedToken, mode: Mode) -> str:
        if mode == "transaction-token" and self.settings.transaction_tokens is not None:
            url, headers = self.settings.transaction_tokens.target_url, txn_token_headers(token)
        else:
            url, headers = self.settings.target_resource_server_url, {"Authorization": token.authorization}
        if token.dpop_bound and self.dpop is not None:
            headers["DPoP"] = self.dpop.proof("GET", url, access_token=token.access_token)
        try:
            response = await self.http.get(url, headers=headers)
        except httpx.HTTPError as exc:
            raise DownstreamFailure(
                503, "temporarily_unavailable", f"message-service did not answer ({type(exc).__name__})"
            ) from None
        if response.status_code != 200:
            reason = response.headers.get("www-authenticate") or response.text[:200]
            raise DownstreamFailure(
                502, "downstream_refused", f"message-service answered {response.status_code}: {reason}"
            )
        return response.text


def _wants_json(request: Request) -> bool:
    return "application/json" in request.headers.get("accept", "")


def create_user_service(
    settings: UserServiceSettings, transport: httpx.AsyncBaseTransport | None = None, *, dpop: bool = False
) -> FastAPI:
    # trust_env=False: every call stays on this machine, whatever proxy the environment names.
    http = httpx.AsyncClient(
        timeout=HTTP_TIMEOUT_SECONDS, trust_env=False, transport=transport, limits=DOWNSTREAM_CONNECTIONS
    )
    service = UserService(settings, http, DPoPKey() if dpop else None)
    # The DPoP variant takes bound tokens only, on every route and in the metadata it publishes.
    checker = DPoPChecker() if dpop else None
    dpop_mode: DPoPMode = "required" if dpop else "off"
    authenticated = require_token(
        settings.jwt.validator(http=http),
        realm="user-service",
        dpop=dpop_mode,
        dpop_checker=checker,
    )

    app = resource_server_app("user-service", http)
    if settings.protected_resource_metadata is not None:
        publish_resource_metadata(app, settings.protected_resource_metadata, dpop_checker=checker, dpop=dpop_mode)
    app.state.user_service = service

    @app.get("/user/message")
    async def user_message(
        request: Request,
        principal: Annotated[Principal, Depends(authenticated)],
        mode: Annotated[Mode, Query()] = "impersonation",
    ) -> Response:
        try:
            token = await service.exchange(principal, mode, request)
            message = await service.call_message_service(token, mode)
        except DownstreamFailure as failure:
            return error_response(failure.status, failure.error, failure.description)
        if not _wants_json(request):
            return PlainTextResponse(message)
        try:
            exchanged = view_token(token.access_token).to_dict()
        except NotAJWT:
            exchanged = None  # an opaque token from another server: nothing to show
        return JSONResponse({"message": message, "mode": mode, "exchanged_token": exchanged})

    return app
