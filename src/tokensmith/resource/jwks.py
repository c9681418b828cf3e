"""The issuer's signing keys, fetched with httpx, parsed once, and refetched sparingly.

* Keys are parsed into joserfc key objects once per fetch and indexed by ``kid``: validation does a dict lookup.
* An unknown ``kid`` (the issuer rotated) triggers a refetch; concurrent misses wait for the same fetch. After a
  refetch that did not find the ``kid`` (or failed), further misses wait ``cooldown`` before the next one, so a
  storm of forged ``kid`` values costs the issuer one request per cool-down while a real rotation is seen at once.
* When a fetch fails, the keys already held keep verifying: an outage of the authorization server does not take
  its resource servers down with it.
* Keys older than ``max_age`` are refreshed in the background (so a key the issuer withdrew stops verifying).
"""

from __future__ import annotations

import asyncio
import logging
import time
from collections.abc import Callable, Mapping
from typing import Any

import httpx
from joserfc.errors import JoseError
from joserfc.jwk import ECKey, OKPKey, RSAKey, import_key

from tokensmith.client.discovery import discover, endpoint
from tokensmith.client.errors import TokenClientError

logger = logging.getLogger(__name__)

VerificationKey = RSAKey | ECKey | OKPKey
Clock = Callable[[], float]

# Which algorithms a key can verify, from its own parameters: an RSA key never verifies an HS256 token (no
# algorithm confusion) and an EC key only the one algorithm of its curve.
_RSA_ALGS = frozenset({"RS256", "RS384", "RS512", "PS256", "PS384", "PS512"})
_EC_ALGS = {"P-256": frozenset({"ES256"}), "P-384": frozenset({"ES384"}), "P-521": frozenset({"ES512"})}
_OKP_ALGS = {"Ed25519": frozenset({"EdDSA", "Ed25519"}), "Ed448": frozenset({"EdDSA", "Ed448"})}
ASYMMETRIC_ALGORITHMS = _RSA_ALGS | {"ES256", "ES384", "ES512", "EdDSA", "Ed25519", "Ed448"}


def key_algorithms(jwk: Mapping[str, Any]) -> frozenset[str]:
    kty = jwk.get("kty")
    if kty == "RSA":
        algs = _RSA_ALGS
    elif kty == "EC":
        algs = _EC_ALGS.get(str(jwk.get("crv")), frozenset())
    elif kty == "OKP":
        algs = _OKP_ALGS.get(str(jwk.get("crv")), frozenset())
    else:  # "oct" and anything unknown: a public JWKS has no business holding them
        return frozenset()
    declared = jwk.get("alg")
    return algs & {declared} if isinstance(declared, str) else algs


class KeySet:
    """Parsed verification keys by ``kid`` (keys without one are tried in turn)."""

    def __init__(self, jwks: Mapping[str, Any], allowed: frozenset[str]) -> None:
        self.by_kid: dict[str, tuple[VerificationKey, frozenset[str]]] = {}
        self.unnamed: list[tuple[VerificationKey, frozenset[str]]] = []
        keys = jwks.get("keys")
        if not isinstance(keys, list):
            raise ValueError("a JWK Set needs a 'keys' array")
        for jwk in keys:
            if not isinstance(jwk, dict) or jwk.get("use", "sig") != "sig":
                continue
            algs = key_algorithms(jwk) & allowed
            if not algs:
                continue
            try:
                key = import_key({k: v for k, v in jwk.items() if k not in ("d", "p", "q", "dp", "dq", "qi")})
            except (JoseError, ValueError, TypeError, KeyError):
                logger.warning("ignoring a JWK that does not parse (kid %r)", jwk.get("kid"))
                continue
            if not isinstance(key, RSAKey | ECKey | OKPKey):
                continue
            kid = jwk.get("kid")
            if isinstance(kid, str):
                self.by_kid[kid] = (key, algs)
            else:
                self.unnamed.append((key, algs))

    def __len__(self) -> int:
        return len(self.by_kid) + len(self.unnamed)

    def candidates(self, kid: object, alg: str) -> list[VerificationKey]:
        if isinstance(kid, str):
            entry = self.by_kid.get(kid)
            return [entry[0]] if entry is not None and alg in entry[1] else []
        return [key for key, algs in (*self.by_kid.values(), *self.unnamed) if alg in algs]

    def has(self, kid: object) -> bool:
        return not isinstance(kid, str) or kid in self.by_kid


class JWKSCache:
    """Keys of one issuer; ``jwks_uri`` is discovered from the issuer's metadata unless given."""

    def __init__(
        self,
        *,
        issuer: str,
        jwks_uri: str | None,
        http: httpx.AsyncClient,
        allowed: frozenset[str],
        clock: Clock = time.time,
        cooldown: float = 30.0,
        max_age: float = 300.0,
    ) -> None:
        self.issuer = issuer
        self.jwks_uri = jwks_uri
        self._http = http
        self._allowed = allowed
        self._clock = clock
        self._cooldown = cooldown
        self._max_age = max_age
        self.keys = KeySet({"keys": []}, allowed)
        self.fetched_at: float | None = None
        self.last_attempt: float | None = None
        self.fruitless_at: float | None = None
        self.last_error: str | None = None
        self.fetch_count = 0
        self._task: asyncio.Future[bool] | None = None

    async def refresh(self) -> bool:
        """Fetch now (sharing a fetch already in flight); True when the keys were replaced."""
        if self._task is None:
            self.last_attempt = self._clock()
            task = asyncio.ensure_future(self._fetch())
            self._task = task
            task.add_done_callback(self._landed)
        # Shielded: a request that gives up must not cancel the fetch other requests wait for.
        return await asyncio.shield(self._task)

    async def refresh_for_unknown_key(self, kid: object, alg: str) -> bool:
        """Refetch for a ``kid`` we do not hold, unless a refetch for an unknown key found nothing (or failed)
        less than ``cooldown`` ago. A genuine rotation is picked up at once, a storm of made-up ``kid`` values
        costs one fetch per cool-down."""
        if self._task is None and self.fruitless_at is not None and self._clock() - self.fruitless_at < self._cooldown:
            return False
        refreshed = await self.refresh()
        if not refreshed or not self.keys.candidates(kid, alg):
            self.fruitless_at = self._clock()
        return refreshed

    def refresh_if_stale(self) -> None:
        """Start a background refresh when the keys are older than ``max_age`` (never blocks the request)."""
        if (
            self._task is None
            and self.fetched_at is not None
            and self.last_attempt is not None
            and self._clock() - self.fetched_at > self._max_age
            and self._clock() - self.last_attempt >= self._cooldown
        ):
            self.last_attempt = self._clock()
            self._task = asyncio.ensure_future(self._fetch())
            self._task.add_done_callback(self._landed)

    def _landed(self, task: asyncio.Future[bool]) -> None:
        if self._task is task:
            self._task = None

    async def _fetch(self) -> bool:
        try:
            if self.jwks_uri is None:
                metadata = await discover(self.issuer, self._http)
                self.jwks_uri = endpoint(metadata, "jwks_uri", self.issuer)
            self.fetch_count += 1
            response = await self._http.get(self.jwks_uri, headers={"Accept": "application/json"})
            response.raise_for_status()
            keys = KeySet(response.json(), self._allowed)
        except (httpx.HTTPError, TokenClientError, ValueError) as exc:
            # Keep the keys we have; the next attempt waits for the cool-down.
            self.last_error = f"{type(exc).__name__}: {exc}"
            logger.warning("could not refresh the signing keys of %s: %s", self.issuer, self.last_error)
            return False
        self.keys = keys
        self.fetched_at = self._clock()
        self.last_error = None
        return True
