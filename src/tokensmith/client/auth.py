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
        request.headers["Authorization"] = token.authorization
        response = yield request
        if response.status_code == 401:
            # Refused although we believed it valid (revoked, keys rotated, clocks apart): one fresh token, one retry.
            token = yield from self.source.flow(refresh=True)
            request.headers["Authorization"] = token.authorization
            yield request

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
        cls, registration: Registration, *, scope: str | Sequence[str] | None = None, clock: Clock = time.time
    ) -> ClientCredentialsAuth:
        """A standalone auth with its own cache (use ``TokenExchanger.client_credentials_auth`` to share one)."""
        return cls(_own_source(registration, client_credentials_form(registration, scope), clock))


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
    ) -> TokenExchangeAuth:
        """A standalone auth with its own cache (use ``TokenExchanger.auth_for`` to share one)."""
        form = token_exchange_form(
            registration,
            subject_token,
            subject_token_type=subject_token_type,
            audience=audience,
            resource=resource,
            scope=scope,
        )
        return cls(_own_source(registration, form, clock))


def _own_source(registration: Registration, form: Form, clock: Clock) -> TokenSource:
    """A request whose token is kept in a cache of its own (a standalone auth shares nothing)."""
    return TokenSource.create(registration, form, TokenCache(clock=clock), MetadataCache(clock=clock), clock)
