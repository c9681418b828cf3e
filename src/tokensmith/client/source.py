"""One cacheable token request: a registration, its form, and where its result is kept."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Protocol

from tokensmith.client.cache import CacheKey, Clock, TokenCache, cache_key
from tokensmith.client.client_auth import Form
from tokensmith.client.discovery import MetadataCache
from tokensmith.client.dpop import DPoPKey
from tokensmith.client.flow import Flow
from tokensmith.client.grant import IssuedToken, token_flow
from tokensmith.client.registration import Registration


@dataclass(frozen=True, slots=True, eq=False)
class TokenSource:
    registration: Registration
    form: Form
    key: CacheKey
    cache: TokenCache
    metadata: MetadataCache
    clock: Clock
    # The key the tokens are bound to (RFC 9449); None: bearer tokens.
    dpop: DPoPKey | None = None

    @classmethod
    def create(
        cls,
        registration: Registration,
        form: Form,
        cache: TokenCache,
        metadata: MetadataCache,
        clock: Clock,
        dpop: DPoPKey | None = None,
    ) -> TokenSource:
        # Tokens bound to a key are cached apart from bearer tokens and from those bound to another key.
        cached_as = registration.registration_id if dpop is None else f"{registration.registration_id}#{dpop.jkt}"
        return cls(registration, form, cache_key(cached_as, form), cache, metadata, clock, dpop)

    def cached(self) -> IssuedToken | None:
        return self.cache.get(self.key)

    def flow(self, *, refresh: bool) -> Flow[IssuedToken]:
        """The cached token (unless ``refresh``), else a token request whose answer is cached."""
        if not refresh:
            cached = self.cache.get(self.key)
            if cached is not None:
                return cached
        token = yield from token_flow(self.registration, self.form, self.metadata, self.clock(), self.dpop)
        self.cache.put(self.key, token)
        return token


class SharedRequests(Protocol):
    """Obtains a source's token with one request in flight per cache key, however many callers ask at once.

    :class:`~tokensmith.client.exchanger.TokenExchanger` is one; an ``httpx.Auth`` created by it waits on it.
    """

    async def obtain(self, source: TokenSource, *, refresh: bool = False) -> IssuedToken: ...
