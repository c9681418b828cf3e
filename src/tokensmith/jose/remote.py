"""One cache for keys published at a ``jwks_uri``: an issuer's (resource servers, trusted issuers) or a client's.

* The first use fetches the keys and waits for them. Keys held longer than ``max_age`` are refreshed in the
  background: the request that notices it is not delayed, and a key the publisher withdrew stops verifying.
* A token no held key suits (an unknown ``kid``: the publisher rotated) triggers a refetch, at most once per
  ``cooldown``; concurrent misses share the fetch in flight. A storm of made-up ``kid`` values costs the
  publisher one request per cool-down, while a genuine rotation is picked up at once.
* A failed fetch leaves the held keys verifying (an outage of the authorization server does not take its
  resource servers down) and the next attempt waits for ``cooldown``.
* A response is bounded in size (``max_bytes``) and each fetch, discovery included, in time (``timeout``).
"""

from __future__ import annotations

import asyncio
import logging
import time
from collections.abc import Callable, Iterable
from typing import Any

import httpx

from tokensmith.client.discovery import discover, endpoint
from tokensmith.client.errors import TokenClientError
from tokensmith.client.flow import MAX_RESPONSE_BYTES, receive
from tokensmith.jose.errors import KeysUnavailable, UnacceptableJWT, UnknownKey
from tokensmith.jose.jws import CompactJWS
from tokensmith.jose.keys import Key, KeySet

logger = logging.getLogger(__name__)

Clock = Callable[[], float]


class RemoteKeySet:
    """The keys at ``jwks_uri``, or at the ``jwks_uri`` of ``issuer``'s metadata (OpenID Connect Discovery, then
    RFC 8414; a document naming another issuer is refused), for an allow-list of ``algorithms``."""

    def __init__(
        self,
        *,
        http: httpx.AsyncClient,
        algorithms: Iterable[str],
        jwks_uri: str | None = None,
        issuer: str | None = None,
        max_age: float = 300.0,
        cooldown: float = 30.0,
        timeout: float = 5.0,
        max_bytes: int = MAX_RESPONSE_BYTES,
        clock: Clock = time.monotonic,
    ) -> None:
        if jwks_uri is None and issuer is None:
            raise ValueError("a remote key set needs a jwks_uri or an issuer to discover it from")
        self.issuer = issuer
        self.jwks_uri = jwks_uri
        self._source = issuer or jwks_uri
        self._http = http
        self._max_age = max_age
        self._cooldown = cooldown
        self._timeout = timeout
        self._max_bytes = max_bytes
        self._clock = clock
        self._keys = KeySet((), algorithms)
        self.algorithms = self._keys.algorithms
        self.fetched_at: float | None = None  # the last successful fetch
        self.failed_at: float | None = None  # the last failed one (None once one succeeds)
        self.last_error: str | None = None
        self.fetch_count = 0
        self._refetched_at: float | None = None  # the last refetch for a token no key suited
        self._task: asyncio.Task[bool] | None = None

    @property
    def kids(self) -> frozenset[str]:
        return self._keys.kids

    async def keys_for(self, token: CompactJWS) -> list[Key]:
        """The held keys that may verify ``token``, fetching as described above. Raises
        :class:`UnacceptableJWT` (algorithm off the allow-list), :class:`UnknownKey`, or :class:`KeysUnavailable`
        when no key suits and the last fetch failed."""
        if token.alg not in self.algorithms:
            raise UnacceptableJWT(f"signature algorithm {token.alg!r} is not accepted")
        now = self._clock()
        if self.fetched_at is None:
            if self._task is not None or self._may_fetch(now):
                await self.refresh()
        elif now - self.fetched_at > self._max_age and self._may_fetch(now):
            self._start()
        found = self._keys.find(token.kid, token.alg)
        if not found and (self._task is not None or self._may_fetch(now, refetch=True)):
            if self._task is None:
                self._refetched_at = now
            await self.refresh()
            found = self._keys.find(token.kid, token.alg)
        if found:
            return found
        if self.last_error is not None:
            raise KeysUnavailable(f"keys of {self._source} unavailable: {self.last_error}")
        raise UnknownKey("signed with an unknown key")

    async def refresh(self) -> bool:
        """Fetch now, or wait for the fetch in flight; True when the keys were replaced."""
        # Shielded: a request that gives up must not cancel the fetch others wait for.
        return await asyncio.shield(self._start())

    async def aclose(self) -> None:
        """Cancel a fetch in flight (at shutdown)."""
        if self._task is not None:
            self._task.cancel()

    def _may_fetch(self, now: float, *, refetch: bool = False) -> bool:
        if self.failed_at is not None and now - self.failed_at < self._cooldown:
            return False
        return not (refetch and self._refetched_at is not None and now - self._refetched_at < self._cooldown)

    def _start(self) -> asyncio.Task[bool]:
        if self._task is None:
            self._task = asyncio.ensure_future(self._fetch())
            self._task.add_done_callback(self._landed)
        return self._task

    def _landed(self, task: asyncio.Task[bool]) -> None:
        if self._task is task:
            self._task = None

    async def _fetch(self) -> bool:
        self.fetch_count += 1
        try:
            async with asyncio.timeout(self._timeout):
                if self.jwks_uri is None:
                    assert self.issuer is not None
                    self.jwks_uri = endpoint(await discover(self.issuer, self._http), "jwks_uri", self.issuer)
                keys = KeySet.from_jwks(await self._get_json(self.jwks_uri), self.algorithms, source=str(self._source))
        except (httpx.HTTPError, TokenClientError, ValueError, TimeoutError) as exc:
            self.failed_at = self._clock()
            self.last_error = f"{type(exc).__name__}: {exc}"
            logger.warning("could not fetch the keys of %s: %s", self._source, self.last_error)
            return False
        self._keys = keys
        self.fetched_at = self._clock()
        self.failed_at = self.last_error = None
        return True

    async def _get_json(self, url: str) -> Any:
        request = self._http.build_request("GET", url, headers={"Accept": "application/json"})
        response = await receive(self._http, request, self._max_bytes)  # ResponseTooLarge is a ValueError
        response.raise_for_status()
        return response.json()
