"""``httpx.Auth`` that sends an obtained token as Bearer, for sync and async clients from one flow.

:meth:`_GrantAuth.auth_flow` is the protocol, written once: take the cached token or yield the token request
(after discovery, when needed), send the resource request, and on a 401 obtain a fresh token and retry once.
The sync and async entry points only add what concurrency needs: callers that miss the cache together wait for
one token request (a lock per auth, or the exchanger's single flight when the auth came from a TokenExchanger).
"""

from __future__ import annotations

import asyncio
import threading
import time
from collections.abc import AsyncGenerator, Generator, Sequence

import httpx

from tokensmith.client.cache import Clock, TokenCache
from tokensmith.client.client_auth import Form
from tokensmith.client.discovery import MetadataCache
from tokensmith.client.dpop import DPoPKey, asks_for_nonce
from tokensmith.client.flow import Done, Flow, advance
from tokensmith.client.grant import ACCESS_TOKEN_TYPE, IssuedToken, client_credentials_form, token_exchange_form
from tokensmith.client.registration import Registration
from tokensmith.client.source import SharedRequests, TokenSource


class _GrantAuth(httpx.Auth):
    requires_response_body = True  # token responses are parsed inside the flow

    def __init__(self, source: TokenSource, *, exchanger: SharedRequests | None = None) -> None:
        self.source = source
        self._exchanger = exchanger
        self._thread_lock = threading.Lock()
        self._task_lock: asyncio.Lock | None = None

    def auth_flow(self, request: httpx.Request) -> Generator[httpx.Request, httpx.Response, None]:
        token = yield from self.source.flow(refresh=False)
        self._authorize(request, token)
        response = yield request
        dpop = self.source.dpop
        if dpop is not None and token.dpop_bound and dpop.remember_nonce(response) and asks_for_nonce(response):
            # RFC 9449 9: the resource server wants its nonce in the proof; the same token, a new proof, once.
            self._authorize(request, token)
            response = yield request
        if response.status_code == 401:
            # Refused although we believed it valid (revoked, keys rotated, clocks apart): one fresh token, one retry.
            token = yield from self.source.flow(refresh=True)
            self._authorize(request, token)
            yield request

    def _authorize(self, request: httpx.Request, token: IssuedToken) -> None:
        """The token, and for a DPoP-bound one a fresh proof by the source's key (RFC 9449 7)."""
        request.headers["Authorization"] = token.authorization
        if token.dpop_bound and self.source.dpop is not None:
            request.headers["DPoP"] = self.source.dpop.proof(
                request.method, request.url, access_token=token.access_token
            )

    def sync_auth_flow(self, request: httpx.Request) -> Generator[httpx.Request, httpx.Response, None]:
        if self.source.cached() is None:
            with self._thread_lock:
                if self.source.cached() is None:
                    yield from _reading(self.source.flow(refresh=False))
        yield from super().sync_auth_flow(request)

    async def async_auth_flow(self, request: httpx.Request) -> AsyncGenerator[httpx.Request, httpx.Response]:
        if self._exchanger is not None:
            await self._exchanger.obtain(self.source)
        elif self.source.cached() is None:
            if self._task_lock is None:
                self._task_lock = asyncio.Lock()
            async with self._task_lock:
                if self.source.cached() is None:
                    flow = self.source.flow(refresh=False)
                    step = advance(flow)
                    while not isinstance(step, Done):
                        response = yield step
                        await response.aread()
                        step = advance(flow, response)
        inner = super().async_auth_flow(request)
        step = await inner.__anext__()
        while True:
            response = yield step
            try:
                step = await inner.asend(response)
            except StopAsyncIteration:
                return


def _reading(flow: Flow[IssuedToken]) -> Generator[httpx.Request, httpx.Response, IssuedToken]:
    """Run a token flow inside a sync auth flow, reading each response body as httpx's own driver does."""
    step = advance(flow)
    while not isinstance(step, Done):
        response = yield step
        response.read()
        step = advance(flow, response)
    return step.value


class ClientCredentialsAuth(_GrantAuth):
    """Bearer auth with the registration's client-credentials token."""

    @classmethod
    def for_registration(
        cls,
        registration: Registration,
        *,
        scope: str | Sequence[str] | None = None,
        clock: Clock = time.time,
        dpop: DPoPKey | None = None,
    ) -> ClientCredentialsAuth:
        """A standalone auth with its own cache (use ``TokenExchanger.client_credentials_auth`` to share one); with
        ``dpop`` its tokens are bound to that key and every call carries a proof."""
        return cls(_own_source(registration, client_credentials_form(registration, scope), clock, dpop))


class TokenExchangeAuth(_GrantAuth):
    """Bearer auth with a token exchanged for ``subject_token`` (RFC 8693)."""

    @classmethod
    def for_registration(
        cls,
        subject_token: str,
        registration: Registration,
        *,
        audience: str | Sequence[str] | None = None,
        resource: str | Sequence[str] | None = None,
        scope: str | Sequence[str] | None = None,
        subject_token_type: str = ACCESS_TOKEN_TYPE,
        clock: Clock = time.time,
        dpop: DPoPKey | None = None,
    ) -> TokenExchangeAuth:
        """A standalone auth with its own cache (use ``TokenExchanger.auth_for`` to share one); with ``dpop`` the
        exchange request carries a proof by that key, so the exchanged token is bound to it (a bound subject token
        stays bound), and every call carries a proof."""
        form = token_exchange_form(
            registration,
            subject_token,
            subject_token_type=subject_token_type,
            audience=audience,
            resource=resource,
            scope=scope,
        )
        return cls(_own_source(registration, form, clock, dpop))


def _own_source(registration: Registration, form: Form, clock: Clock, dpop: DPoPKey | None) -> TokenSource:
    """A request whose token is kept in a cache of its own (a standalone auth shares nothing)."""
    return TokenSource.create(registration, form, TokenCache(clock=clock), MetadataCache(clock=clock), clock, dpop)
