"""The public keys a ``private_key_jwt`` client verifies with: its inline ``jwks`` and/or its ``jwks-uri``.

Keys at ``jwks-uri`` are fetched with httpx and cached for ``jwks-cache-time-to-live``. An assertion signed with a
``kid`` we do not know triggers a refetch (the client rotated its keys), at most once per
``jwks-refetch-cool-down``, so a flood of made-up kids cannot turn the server into a load generator against the
client's host. Concurrent misses share one fetch; an unreachable URL leaves the cached keys serving.
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Mapping
from datetime import datetime
from typing import Any, cast

import httpx
from joserfc.errors import JoseError
from joserfc.jwk import ECKey, KeySet, KeySetSerialization, RSAKey

from tokensmith.config.server import CLIENT_ASSERTION_KEY_TYPES, ClientRegistration
from tokensmith.keys import Clock

logger = logging.getLogger(__name__)

PublicKey = RSAKey | ECKey
# The EC curve each EC algorithm needs (RFC 7518 3.4): a P-384 key never verifies an ES256 signature.
_CURVE_FOR_ALG = {"ES256": "P-256"}
_PRIVATE_MEMBERS = ("d", "p", "q", "dp", "dq", "qi", "oth")


def import_public_keys(jwks: Mapping[str, Any]) -> list[PublicKey]:
    """The usable RSA and EC public keys of a JWK Set (private members dropped, other key types skipped)."""
    keys: list[PublicKey] = []
    for entry in jwks.get("keys", ()):
        if not isinstance(entry, dict) or entry.get("kty") not in ("RSA", "EC"):
            continue
        public = {name: value for name, value in entry.items() if name not in _PRIVATE_MEMBERS}
        try:
            key = KeySet.import_key_set(cast(KeySetSerialization, {"keys": [public]})).keys[0]
        except (JoseError, ValueError, TypeError, KeyError):
            logger.warning("skipping an unreadable key (kid %r) in a client's JWK Set", entry.get("kid"))
            continue
        if isinstance(key, RSAKey | ECKey):
            keys.append(key)
    return keys


def matching_keys(keys: list[PublicKey], kid: str | None, alg: str) -> list[PublicKey]:
    """Keys that may verify an assertion with this ``kid`` and ``alg``: the key type must fit the algorithm."""
    kty = CLIENT_ASSERTION_KEY_TYPES.get(alg)
    curve = _CURVE_FOR_ALG.get(alg)
    return [
        key
        for key in keys
        if key.key_type == kty
        and (curve is None or key.get("crv") == curve)
        and (kid is None or key.kid == kid)
        and key.get("alg") in (None, alg)
        and key.get("use") in (None, "sig")
    ]


class ClientKeys:
    """The verification keys of one client."""

    def __init__(self, registration: ClientRegistration, http: httpx.AsyncClient, clock: Clock) -> None:
        self.registration = registration
        self._http = http
        self._clock = clock
        self._inline = import_public_keys(registration.jwks) if registration.jwks is not None else []
        self._fetched: list[PublicKey] = []
        self._fetched_at: datetime | None = None
        self._attempted_at: datetime | None = None
        self._lock = asyncio.Lock()

    async def candidates(self, kid: str | None, alg: str) -> list[PublicKey]:
        """Keys to try for an assertion's ``kid`` and ``alg`` (empty when the client publishes none)."""
        if self.registration.jwks_uri is None:
            return matching_keys(self._inline, kid, alg)
        now = self._clock()
        stale = self._fetched_at is None or now - self._fetched_at > self.registration.jwks_cache_time_to_live
        if stale and self._may_fetch(now):
            await self._refresh()
        found = matching_keys([*self._inline, *self._fetched], kid, alg)
        if not found and self._may_fetch(self._clock()):
            await self._refresh()  # maybe the client rotated its keys
            found = matching_keys([*self._inline, *self._fetched], kid, alg)
        return found

    def _may_fetch(self, now: datetime) -> bool:
        # Failed attempts count too: an unreachable jwks-uri is not asked again on every request.
        cool_down = self.registration.jwks_refetch_cool_down
        return self._attempted_at is None or now - self._attempted_at >= cool_down

    async def _refresh(self) -> None:
        uri = self.registration.jwks_uri
        if uri is None:
            return
        async with self._lock:
            now = self._clock()
            if not self._may_fetch(now):
                return  # another task fetched while this one waited for the lock
            self._attempted_at = now
            try:
                response = await self._http.get(uri)
                response.raise_for_status()
                body = response.json()
                if not isinstance(body, dict) or not isinstance(body.get("keys"), list):
                    raise ValueError(f"{uri} is not a JWK Set")
                self._fetched = import_public_keys(body)
                self._fetched_at = now
            except (httpx.HTTPError, ValueError) as exc:
                logger.warning("cannot fetch the keys of client %s from %s: %s", self.registration.client_id, uri, exc)
