"""The server's signing keys: generation, persistence through the store, rotation, the public JWKS, signing and
verifying our own tokens.

Keys are generated on first start and persisted, so a restart (or another replica) signs with the same keys.
Rotation adds a new active key per algorithm and retires the old one: it stays in the JWKS for
``retired-key-grace`` so that tokens it signed keep verifying.
"""

from __future__ import annotations

import asyncio
import time
import uuid
from collections.abc import Mapping, Sequence
from datetime import datetime
from typing import Any

from joserfc.jwk import ECKey, KeyParameters, RSAKey

from tokensmith import jose
from tokensmith.config.server import KeySettings
from tokensmith.server.clock import Clock, utc_now
from tokensmith.store.base import Store
from tokensmith.store.records import SigningKeyRecord

SigningKey = ECKey | RSAKey
SUPPORTED_ALGORITHMS: tuple[str, ...] = ("ES256", "RS256")
# Least time between two key re-reads triggered by an unknown `kid` (see KeyManager.verify_or_refresh).
_MIN_REFRESH_INTERVAL = 5.0


def generate_key(alg: str, now: datetime) -> SigningKeyRecord:
    kid = uuid.uuid4().hex
    parameters: KeyParameters = {"kid": kid, "alg": alg, "use": "sig"}
    key: SigningKey
    if alg == "ES256":
        key = ECKey.generate_key("P-256", parameters=parameters, private=True)
    elif alg == "RS256":
        key = RSAKey.generate_key(2048, parameters=parameters, private=True)
    else:
        raise ValueError(f"unsupported signing algorithm {alg!r}; supported: {SUPPORTED_ALGORITHMS}")
    return SigningKeyRecord(kid=kid, alg=alg, private_jwk=dict(key.as_dict(private=True)), created_at=now)


def import_key(record: SigningKeyRecord) -> SigningKey:
    if record.alg == "ES256":
        return ECKey.import_key(record.private_jwk)
    return RSAKey.import_key(record.private_jwk)


class KeyManager:
    """The server's signing keys, loaded from the store and kept in memory (prepared once, not per token)."""

    def __init__(self, store: Store, settings: KeySettings, clock: Clock = utc_now) -> None:
        self._store = store
        self._settings = settings
        self._clock = clock
        self._records: list[SigningKeyRecord] = []
        self._active: dict[str, jose.Key] = {}
        self._keys = jose.KeySet((), SUPPORTED_ALGORITHMS)
        self._jwks: dict[str, Any] = {"keys": []}
        # When a token naming a key we had not seen last made us re-read the keys (see verify_or_refresh).
        self._last_unknown_key_refresh = float("-inf")
        self._pending_refresh: asyncio.Future[None] | None = None

    @property
    def records(self) -> Sequence[SigningKeyRecord]:
        return tuple(self._records)

    async def load(self) -> None:
        """Load keys from the store, generating an active key for each configured algorithm that lacks one."""
        records = list(await self._store.list_signing_keys())
        wanted = {self._settings.access_token_algorithm, self._settings.id_token_algorithm}
        for alg in sorted(wanted):
            if not any(r.alg == alg and r.status == "active" for r in records):
                record = generate_key(alg, self._clock())
                await self._store.add_signing_key(record)
        # Re-read: when several replicas start at once each may have added a key; all of them verify.
        self._index(await self._store.list_signing_keys())

    async def rotate(self, algorithms: Sequence[str] | None = None) -> list[SigningKeyRecord]:
        """Add a new active key per algorithm and retire the previous ones; return the new keys."""
        now = self._clock()
        records = list(await self._store.list_signing_keys())
        algs = list(algorithms) if algorithms else sorted({r.alg for r in records if r.status == "active"})
        created = []
        for alg in algs:
            new = generate_key(alg, now)
            await self._store.add_signing_key(new)
            for old in records:
                if old.alg == alg and old.status == "active":
                    await self._store.retire_signing_key(old.kid, now)
            created.append(new)
        # Keys retired longer ago than the grace period can no longer verify a live token: drop them.
        for old in records:
            if old.status == "retired" and old.retired_at and now - old.retired_at > self._settings.retired_key_grace:
                await self._store.delete_signing_key(old.kid)
        self._index(await self._store.list_signing_keys())
        return created

    async def refresh(self) -> None:
        """Re-read keys from the store (another replica may have rotated)."""
        self._index(await self._store.list_signing_keys())

    def _index(self, records: Sequence[SigningKeyRecord]) -> None:
        now = self._clock()
        grace = self._settings.retired_key_grace
        usable = [
            r for r in records if r.status == "active" or (r.retired_at is not None and now - r.retired_at <= grace)
        ]
        keys = {r.kid: jose.Key(import_key(r), [r.alg]) for r in usable}
        active: dict[str, jose.Key] = {}
        # The oldest active key per algorithm signs. Replicas starting together may each add a key; every one of
        # them then picks the same (first) key, whatever it has seen of the others. Rotation retires the old
        # key, so after `rotate` the new key is the only active one.
        for record in sorted(usable, key=lambda r: (r.created_at, r.kid), reverse=True):
            if record.status == "active":
                active[record.alg] = keys[record.kid]
        self._records = list(records)
        self._keys = jose.KeySet(keys.values(), SUPPORTED_ALGORITHMS)
        self._active = active
        self._jwks = {"keys": [key.public_jwk() for key in keys.values()]}

    def jwks(self) -> dict[str, Any]:
        """The public JWK Set (active and recently retired keys)."""
        return self._jwks

    def sign(self, claims: Mapping[str, Any], *, alg: str, typ: str = "JWT") -> str:
        """A compact JWS of ``claims`` with the active key for ``alg`` (header ``{"typ", "alg", "kid"}``)."""
        key = self._active.get(alg)
        if key is None:
            raise ValueError(f"no active {alg} signing key; configured keys: {sorted(self._active)}")
        return key.sign(claims, alg=alg, typ=typ)

    def verify(self, token: str | jose.CompactJWS) -> jose.CompactJWS:
        """The token, parsed (unless it already is) and its signature verified with one of our keys, chosen by
        its ``kid`` (required) and ``alg``. Claims are the caller's to check. Raises :class:`jose.InvalidJWT`."""
        parsed = jose.parse(token) if isinstance(token, str) else token
        keys = self._keys.keys_for(parsed)
        if parsed.kid is None:
            raise jose.UnknownKey("signed with an unknown key (no 'kid')")
        jose.verify(parsed, keys)
        return parsed

    async def verify_or_refresh(self, token: str | jose.CompactJWS) -> jose.CompactJWS:
        """:meth:`verify`, re-reading the keys once when the token names a key this process has not seen (another
        replica generated or rotated it). Such re-reads happen at most every few seconds, so junk ``kid``s cannot
        turn every request into a database query; the other reads (start-up, the periodic refresh) do not count,
        so a key another replica added just after this one loaded is found at once. Requests that meet the new
        key while its re-read runs wait for that one read."""
        parsed = jose.parse(token) if isinstance(token, str) else token
        try:
            return self.verify(parsed)
        except jose.UnknownKey:
            pending = self._pending_refresh
            if pending is None:
                now = time.monotonic()
                if now - self._last_unknown_key_refresh < _MIN_REFRESH_INTERVAL:
                    raise
                self._last_unknown_key_refresh = now
                pending = self._pending_refresh = asyncio.ensure_future(self._refresh_for_unknown_key())
        await asyncio.shield(pending)
        return self.verify(parsed)

    async def _refresh_for_unknown_key(self) -> None:
        try:
            await self.refresh()
        finally:
            self._pending_refresh = None
