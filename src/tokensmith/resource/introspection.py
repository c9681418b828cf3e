"""RFC 7662 token introspection, for opaque tokens and for routes that must notice a revocation promptly.

The resource server authenticates to the introspection endpoint as a client (any method of
:mod:`tokensmith.client`). Answers are cached for a short ``cache_ttl`` (never past the token's ``exp``), keyed by
a digest of the token, so a burst of requests with one token costs one introspection.
"""

from __future__ import annotations

import asyncio
import hashlib
import time
from collections import OrderedDict
from collections.abc import Sequence

import httpx

from tokensmith.client.client_auth import Form, authenticate
from tokensmith.client.discovery import discover, endpoint
from tokensmith.client.errors import TokenClientError
from tokensmith.client.flow import ResponseTooLarge, receive
from tokensmith.client.registration import Registration
from tokensmith.resource.errors import InvalidToken, ValidatorUnavailable
from tokensmith.resource.principal import Principal
from tokensmith.resource.validator import Clock


class IntrospectionValidator:
    """Validates tokens by asking the authorization server; same interface as :class:`TokenValidator`."""

    def __init__(
        self,
        registration: Registration,
        *,
        introspection_uri: str | None = None,
        audience: str | Sequence[str] | None = None,
        cache_ttl: float = 30.0,
        max_entries: int = 4096,
        clock: Clock = time.time,
        http: httpx.AsyncClient | None = None,
        timeout: float = 5.0,
    ) -> None:
        self._registration = registration
        self._uri = introspection_uri or registration.introspection_uri
        self._audiences = (
            None if audience is None else frozenset((audience,) if isinstance(audience, str) else audience)
        )
        self._ttl = cache_ttl
        self._max_entries = max_entries
        self._clock = clock
        self._owns_http = http is None
        self._http = http if http is not None else httpx.AsyncClient(timeout=timeout)
        self._cache: OrderedDict[str, tuple[float, Principal | None]] = OrderedDict()
        self._in_flight: dict[str, asyncio.Future[Principal | None]] = {}
        self.request_count = 0

    async def validate(self, token: str) -> Principal:
        digest = hashlib.sha256(token.encode("utf-8", "surrogatepass")).hexdigest()
        now = self._clock()
        cached = self._cache.get(digest)
        if cached is not None and now < cached[0]:
            principal = cached[1]
        else:
            task = self._in_flight.get(digest)
            if task is None:
                task = asyncio.ensure_future(self._introspect(token, digest))
                self._in_flight[digest] = task
                task.add_done_callback(self._landed)
            principal = await asyncio.shield(task)
        if principal is None:
            raise InvalidToken("the token is not active")
        if principal.expires_at is not None and self._clock() >= principal.expires_at:
            raise InvalidToken("the token has expired")
        return principal

    def _landed(self, task: asyncio.Future[Principal | None]) -> None:
        for digest, pending in list(self._in_flight.items()):
            if pending is task:
                del self._in_flight[digest]
        if not task.cancelled():
            task.exception()  # retrieved, so a failure nobody awaits any more is not logged as unretrieved

    async def _introspect(self, token: str, digest: str) -> Principal | None:
        try:
            uri = await self._endpoint()
            form: Form = {"token": token, "token_type_hint": "access_token"}
            headers = {"Accept": "application/json"}
            authenticate(self._registration, form, headers, uri, self._clock())
            self.request_count += 1
            response = await receive(self._http, self._http.build_request("POST", uri, data=form, headers=headers))
        except (httpx.HTTPError, TokenClientError, ResponseTooLarge) as exc:
            raise ValidatorUnavailable(f"introspection failed: {type(exc).__name__}") from None
        if response.status_code != 200:
            raise ValidatorUnavailable(f"introspection endpoint answered {response.status_code}")
        try:
            body = response.json()
        except ValueError:
            raise ValidatorUnavailable("introspection endpoint did not answer JSON") from None
        principal = None
        if isinstance(body, dict) and body.get("active") is True and self._audience_ok(body.get("aud")):
            principal = Principal.from_claims(body, token)
        now = self._clock()
        until = now + self._ttl
        if principal is not None and principal.expires_at is not None:
            until = min(until, principal.expires_at)
        self._cache[digest] = (until, principal)
        self._cache.move_to_end(digest)
        while len(self._cache) > self._max_entries:
            self._cache.popitem(last=False)
        return principal

    def _audience_ok(self, aud: object) -> bool:
        if self._audiences is None:
            return True
        values = [aud] if isinstance(aud, str) else aud if isinstance(aud, list) else []
        return any(value in self._audiences for value in values if isinstance(value, str))

    async def _endpoint(self) -> str:
        if self._uri is None:
            issuer = self._registration.issuer_uri
            if issuer is None:
                raise ValidatorUnavailable("no introspection_uri and no issuer to discover it from")
            self._uri = endpoint(await discover(issuer, self._http), "introspection_endpoint", issuer)
        return self._uri

    async def aclose(self) -> None:
        if self._owns_http:
            await self._http.aclose()
