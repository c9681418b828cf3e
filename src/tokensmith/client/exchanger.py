"""The token manager a service uses: RFC 8693 exchange and client credentials, cached, one request per key.

It plays the part of Spring's ``OAuth2AuthorizedClientManager`` with a ``TokenExchangeOAuth2AuthorizedClientProvider``::

    exchanger = TokenExchanger(load_client_properties("application-userservice.yml"))
    token = await exchanger.exchange(principal.token, registration="my-message-service")
    async with httpx.AsyncClient(auth=exchanger.auth_for(principal.token, registration="my-message-service")) as c:
        ...
"""

from __future__ import annotations

import asyncio
import time
from collections.abc import Iterable, Mapping, Sequence
from functools import partial
from types import TracebackType
from typing import Unpack

import httpx

from tokensmith.client.auth import ClientCredentialsAuth, TokenExchangeAuth
from tokensmith.client.cache import CacheKey, Clock, TokenCache
from tokensmith.client.client_auth import Form
from tokensmith.client.discovery import MetadataCache
from tokensmith.client.dpop import DPoPKey
from tokensmith.client.errors import RegistrationError
from tokensmith.client.flow import run_async
from tokensmith.client.grant import (
    ACCESS_TOKEN_TYPE,
    ExchangeParameters,
    IssuedToken,
    client_credentials_form,
    token_exchange_form,
    token_flow,
)
from tokensmith.client.registration import OAuth2ClientProperties, Registration
from tokensmith.client.source import TokenSource

Scopes = str | Sequence[str] | None


class TokenExchanger:
    """Obtains tokens for registrations, caches them until ``refresh_skew`` before expiry, shares in-flight requests.

    ``http`` is the client used to talk to authorization servers; one is created (and closed by :meth:`aclose`)
    when not given. Errors: :class:`TokenRequestError` (refused: map to 502), :class:`AuthorizationServerUnavailable`
    (unreachable or 5xx: map to 503), :class:`DiscoveryError`, :class:`RegistrationError`.
    """

    def __init__(
        self,
        registrations: OAuth2ClientProperties | Mapping[str, Registration] | Iterable[Registration],
        *,
        http: httpx.AsyncClient | None = None,
        clock: Clock = time.time,
        refresh_skew: float = 60.0,
        unknown_expiry_ttl: float = 10.0,
        cache_size: int = 1024,
        timeout: float = 10.0,
        dpop: DPoPKey | None = None,
    ) -> None:
        if isinstance(registrations, OAuth2ClientProperties):
            self._registrations = registrations.registrations()
        elif isinstance(registrations, Mapping):
            self._registrations = dict(registrations)
        else:
            self._registrations = {r.registration_id: r for r in registrations}
        self._owns_http = http is None
        self._http = http if http is not None else httpx.AsyncClient(timeout=timeout)
        self.clock = clock
        self.cache = TokenCache(
            max_entries=cache_size, refresh_skew=refresh_skew, unknown_expiry_ttl=unknown_expiry_ttl, clock=clock
        )
        self.metadata = MetadataCache(clock=clock)
        self._in_flight: dict[CacheKey, asyncio.Future[IssuedToken]] = {}
        # With a DPoP key every token request carries a proof by it: the tokens (exchanged ones too) are bound to it.
        self.dpop = dpop

    def registration(self, registration_id: str) -> Registration:
        try:
            return self._registrations[registration_id]
        except KeyError:
            known = ", ".join(sorted(self._registrations)) or "none"
            raise RegistrationError(f"no client registration {registration_id!r} (known: {known})") from None

    async def exchange(
        self, subject_token: str, *, registration: str, **parameters: Unpack[ExchangeParameters]
    ) -> IssuedToken:
        """RFC 8693 token exchange of ``subject_token``.

        The parameters and their defaults are :func:`token_exchange_form`'s: ``audience``/``resource``/``scope``
        default to the registration's, the token types to an access token.
        """
        return await self.obtain(self.exchange_source(subject_token, registration=registration, **parameters))

    async def client_credentials(self, registration: str, *, scope: Scopes = None) -> IssuedToken:
        """RFC 6749 4.4 client credentials; ``scope`` defaults to the registration's."""
        return await self.obtain(self.client_credentials_source(registration, scope=scope))

    async def bearer_headers(
        self,
        subject_token: str,
        *,
        registration: str,
        audience: Scopes = None,
        resource: Scopes = None,
        scope: Scopes = None,
    ) -> dict[str, str]:
        """``{"Authorization": "Bearer <exchanged token>"}`` for a downstream call on behalf of the subject."""
        token = await self.exchange(
            subject_token, registration=registration, audience=audience, resource=resource, scope=scope
        )
        return {"Authorization": token.authorization}

    def auth_for(
        self,
        subject_token: str,
        *,
        registration: str,
        audience: Scopes = None,
        resource: Scopes = None,
        scope: Scopes = None,
        actor_token: str | None = None,
        subject_token_type: str = ACCESS_TOKEN_TYPE,
    ) -> TokenExchangeAuth:
        """An ``httpx.Auth`` that sends the exchanged token (obtained on first use, cached, retried once on 401)."""
        source = self.exchange_source(
            subject_token,
            registration=registration,
            audience=audience,
            resource=resource,
            scope=scope,
            actor_token=actor_token,
            subject_token_type=subject_token_type,
        )
        return TokenExchangeAuth(source, exchanger=self)

    def client_credentials_auth(self, registration: str, *, scope: Scopes = None) -> ClientCredentialsAuth:
        """An ``httpx.Auth`` sending the registration's client-credentials token."""
        return ClientCredentialsAuth(self.client_credentials_source(registration, scope=scope), exchanger=self)

    def exchange_source(
        self, subject_token: str, *, registration: str, **parameters: Unpack[ExchangeParameters]
    ) -> TokenSource:
        found = self.registration(registration)
        return self._source(found, token_exchange_form(found, subject_token, **parameters))

    def client_credentials_source(self, registration: str, *, scope: Scopes = None) -> TokenSource:
        found = self.registration(registration)
        return self._source(found, client_credentials_form(found, scope))

    async def request(self, registration: str, form: Form) -> IssuedToken:
        """One token request of ``registration`` with ``form``, neither cached nor shared with other callers: for a
        token that belongs to one transaction (a Transaction Token, say)."""
        found = self.registration(registration)
        return await run_async(token_flow(found, form, self.metadata, self.clock(), self.dpop), self._http)

    def _source(self, registration: Registration, form: Form) -> TokenSource:
        """A request whose token is kept in (and shared through) this exchanger's cache."""
        return TokenSource.create(registration, form, self.cache, self.metadata, self.clock, self.dpop)

    async def obtain(self, source: TokenSource, *, refresh: bool = False) -> IssuedToken:
        """The cached token for ``source``, else the result of the one request in flight for the same key."""
        if not refresh:
            cached = source.cached()
            if cached is not None:
                return cached
        task = self._in_flight.get(source.key)
        if task is None:
            task = asyncio.ensure_future(run_async(source.flow(refresh=True), self._http))
            self._in_flight[source.key] = task
            task.add_done_callback(partial(self._landed, source.key))
        # Shielded: a caller that gives up (client disconnect) must not cancel the request others wait for.
        return await asyncio.shield(task)

    def _landed(self, key: CacheKey, task: asyncio.Future[IssuedToken]) -> None:
        if self._in_flight.get(key) is task:
            del self._in_flight[key]
        if not task.cancelled():
            task.exception()  # retrieved here, so an error nobody awaited any more is not logged as "never retrieved"

    async def aclose(self) -> None:
        if self._owns_http:
            await self._http.aclose()

    async def __aenter__(self) -> TokenExchanger:
        return self

    async def __aexit__(
        self, exc_type: type[BaseException] | None, exc: BaseException | None, tb: TracebackType | None
    ) -> None:
        await self.aclose()
