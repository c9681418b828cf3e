"""The server's signing keys: generation, sealed persistence through the store, rotation, the public JWKS, signing
and verifying our own tokens.

Keys are generated on first start and persisted, the private part sealed under the key-encryption key
(key_encryption.py), so a restart (or another replica) signs with the same keys. The database holds one active key
per algorithm. Rotation, by ``tokensmith keys rotate`` or once the active key is ``rotation-interval`` old, makes a
new key active and retires the old one: it stays in the JWKS for ``retired-key-grace`` so that tokens it signed keep
verifying, then it is deleted. Only active keys are unsealed; retired ones verify with their public part.
"""

from __future__ import annotations

import asyncio
import dataclasses
import logging
import time
import uuid
from collections.abc import Mapping, Sequence
from datetime import datetime
from typing import Any

from joserfc.jwk import ECKey, KeyParameters, RSAKey

from tokensmith import jose
from tokensmith.config.server import KeySettings
from tokensmith.server.clock import Clock, utc_now
from tokensmith.server.key_encryption import KeyEncryptionError, KeyEncryptionKey
from tokensmith.store.base import Store
from tokensmith.store.records import SigningKeyRecord

SigningKey = ECKey | RSAKey
SUPPORTED_ALGORITHMS: tuple[str, ...] = ("ES256", "RS256")
# Least time between two key re-reads triggered by an unknown `kid` (see KeyManager.verify_or_refresh).
_MIN_REFRESH_INTERVAL = 5.0

logger = logging.getLogger("tokensmith.server")


def _jwk_class(alg: str) -> type[ECKey] | type[RSAKey]:
    if alg == "ES256":
        return ECKey
    if alg == "RS256":
        return RSAKey
    raise ValueError(f"unsupported signing algorithm {alg!r}; supported: {SUPPORTED_ALGORITHMS}")


def seal_key(
    kid: str, alg: str, private_jwk: dict[str, Any], encryption_key: KeyEncryptionKey, created_at: datetime
) -> SigningKeyRecord:
    """The record of a private key: its public part in clear, the whole sealed under ``encryption_key``."""
    public_jwk = dict(_jwk_class(alg).import_key(private_jwk).as_dict(private=False))
    return SigningKeyRecord(
        kid=kid,
        alg=alg,
        public_jwk=public_jwk,
        encrypted_private_jwk=encryption_key.seal_jwk(private_jwk, kid=kid, alg=alg),
        encryption_key_id=encryption_key.id,
        created_at=created_at,
    )


def generate_key(alg: str, now: datetime, encryption_key: KeyEncryptionKey) -> SigningKeyRecord:
    kid = uuid.uuid4().hex
    parameters: KeyParameters = {"kid": kid, "alg": alg, "use": "sig"}
    key: SigningKey
    if _jwk_class(alg) is ECKey:
        key = ECKey.generate_key("P-256", parameters=parameters, private=True)
    else:
        key = RSAKey.generate_key(2048, parameters=parameters, private=True)
    return seal_key(kid, alg, dict(key.as_dict(private=True)), encryption_key, now)


def open_private_key(record: SigningKeyRecord, encryption_key: KeyEncryptionKey) -> SigningKey:
    """The record's private key, unsealed; :class:`KeyEncryptionError` under another key or when altered."""
    check_encryption_key([record], encryption_key)
    jwk = encryption_key.open_jwk(record.encrypted_private_jwk, kid=record.kid, alg=record.alg)
    return _jwk_class(record.alg).import_key(jwk)


def public_key(record: SigningKeyRecord) -> SigningKey:
    return _jwk_class(record.alg).import_key(record.public_jwk)


def check_encryption_key(records: Sequence[SigningKeyRecord], encryption_key: KeyEncryptionKey) -> None:
    """:class:`KeyEncryptionError`, naming both key ids, unless every record is sealed under ``encryption_key``."""
    others = sorted({r.encryption_key_id for r in records} - {encryption_key.id})
    if others:
        raise KeyEncryptionError(
            f"the signing keys were encrypted under key-encryption key {', '.join(others)}; the configured one "
            f"({encryption_key.source}) is {encryption_key.id}"
        )


async def rewrap_keys(store: Store, current: KeyEncryptionKey, new: KeyEncryptionKey) -> int:
    """Seal every private key under ``new`` instead of ``current``, in one transaction; return how many."""
    await seal_plaintext_keys(store, current)
    records = await store.list_signing_keys()
    check_encryption_key(records, current)
    rewrapped = [
        dataclasses.replace(
            r,
            encrypted_private_jwk=new.seal_jwk(
                current.open_jwk(r.encrypted_private_jwk, kid=r.kid, alg=r.alg), kid=r.kid, alg=r.alg
            ),
            encryption_key_id=new.id,
        )
        for r in records
    ]
    if not await store.replace_signing_key_ciphertexts(rewrapped, current.id):
        raise KeyEncryptionError(
            "the signing keys changed while they were re-encrypted; nothing was changed: run again"
        )
    return len(rewrapped)


async def seal_plaintext_keys(store: Store, encryption_key: KeyEncryptionKey) -> int:
    """Seal the keys stored in clear by earlier versions, in place; return how many this call sealed."""
    sealed = 0
    while plaintext := await store.list_plaintext_signing_keys():
        records = [seal_key(k.kid, k.alg, k.private_jwk, encryption_key, k.created_at) for k in plaintext]
        # Another process starting at the same moment may seal them first: the loop then finds none left.
        if await store.replace_signing_key_ciphertexts(records, None):
            sealed += len(records)
    return sealed


class KeyManager:
    """The server's signing keys, loaded from the store and kept in memory (prepared once, not per token)."""

    def __init__(
        self, store: Store, settings: KeySettings, clock: Clock = utc_now, *, encryption_key: KeyEncryptionKey
    ) -> None:
        self._store = store
        self._settings = settings
        self._clock = clock
        self._encryption_key = encryption_key
        self._records: list[SigningKeyRecord] = []
        # Prepared keys by kid: unsealed (active keys, which sign) and public (retired keys, which only verify).
        self._private: dict[str, jose.Key] = {}
        self._public: dict[str, jose.Key] = {}
        self._active: dict[str, jose.Key] = {}
        self._keys = jose.KeySet((), SUPPORTED_ALGORITHMS)
        self._jwks: dict[str, Any] = {"keys": []}
        # When a token naming a key we had not seen last made us re-read the keys (see verify_or_refresh).
        self._last_unknown_key_refresh = float("-inf")
        self._pending_refresh: asyncio.Future[None] | None = None

    @property
    def records(self) -> Sequence[SigningKeyRecord]:
        return tuple(self._records)

    @property
    def encryption_key(self) -> KeyEncryptionKey:
        return self._encryption_key

    async def load(self) -> None:
        """Seal keys earlier versions stored in clear, check that the keys open with the configured key-encryption
        key (:class:`KeyEncryptionError` naming both when not), add an active key for each configured algorithm that
        lacks one, and rotate keys that are due (:meth:`maintain`)."""
        await seal_plaintext_keys(self._store, self._encryption_key)
        records = await self._read()
        wanted = {self._settings.access_token_algorithm, self._settings.id_token_algorithm}
        for alg in sorted(wanted - {r.alg for r in records if r.status == "active"}):
            # False when another process starting at once added one first: both then use that one.
            await self._store.add_signing_key(await self._new_key(alg))
        await self.maintain()

    async def rotate(self, algorithms: Sequence[str] | None = None) -> list[SigningKeyRecord]:
        """Make a new key active per algorithm (default: each that has an active key), retiring the previous one;
        return the new keys (none for an algorithm another process rotated at the same moment)."""
        records = await self._read()
        active = {r.alg: r for r in records if r.status == "active"}
        created = []
        for alg in algorithms or sorted(active):
            new = await self._new_key(alg)
            current = active.get(alg)
            if current is None:
                added = await self._store.add_signing_key(new)
            else:
                added = await self._store.rotate_signing_key(current.kid, new, self._clock())
            if added:
                created.append(new)
        await self._drop_expired(records)
        self._index(await self._read())
        return created

    async def maintain(self) -> None:
        """The periodic round: rotate each active key ``rotation-interval`` old (when set), delete retired keys past
        their grace, re-read. Safe with any number of processes: the database lets one of them rotate a key."""
        records = await self._read()
        interval = self._settings.rotation_interval
        if interval:
            for record in records:
                if record.status == "active" and self._clock() - record.created_at >= interval:
                    await self._store.rotate_signing_key(record.kid, await self._new_key(record.alg), self._clock())
        await self._drop_expired(records)
        self._index(await self._read())

    async def refresh(self) -> None:
        """Re-read keys from the store (another replica may have rotated). Keys this process holds already are
        not unsealed again: after ``tokensmith keys rewrap`` it goes on serving until it restarts with the new
        key-encryption key (:meth:`maintain`, which writes, insists on the configured one)."""
        self._index(await self._store.list_signing_keys())

    async def _read(self) -> list[SigningKeyRecord]:
        records = list(await self._store.list_signing_keys())
        check_encryption_key(records, self._encryption_key)
        return records

    async def _new_key(self, alg: str) -> SigningKeyRecord:
        # RSA key generation takes a good part of a second of CPU: off the event loop.
        return await asyncio.to_thread(generate_key, alg, self._clock(), self._encryption_key)

    async def _drop_expired(self, records: Sequence[SigningKeyRecord]) -> None:
        # Keys retired longer ago than the grace period can no longer verify a live token.
        now = self._clock()
        for old in records:
            if old.status == "retired" and old.retired_at and now - old.retired_at > self._settings.retired_key_grace:
                await self._store.delete_signing_key(old.kid)

    def _index(self, records: Sequence[SigningKeyRecord]) -> None:
        now = self._clock()
        grace = self._settings.retired_key_grace
        usable = [
            r for r in records if r.status == "active" or (r.retired_at is not None and now - r.retired_at <= grace)
        ]
        private = {r.kid: self._prepared(r, private=True) for r in usable if r.status == "active"}
        public = {r.kid: self._prepared(r, private=False) for r in usable if r.status != "active"}
        keys = {**public, **private}
        self._records = list(records)
        self._private, self._public = private, public
        self._keys = jose.KeySet(keys.values(), SUPPORTED_ALGORITHMS)
        self._active = {r.alg: private[r.kid] for r in usable if r.status == "active"}
        self._jwks = {"keys": [key.public_jwk() for key in keys.values()]}

    def _prepared(self, record: SigningKeyRecord, *, private: bool) -> jose.Key:
        known = self._private.get(record.kid) or (None if private else self._public.get(record.kid))
        if known is not None:
            return known
        jwk = open_private_key(record, self._encryption_key) if private else public_key(record)
        return jose.Key(jwk, [record.alg])

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
        except KeyEncryptionError as exc:  # the token's key stays unknown here; the operator reads why
            logger.warning("could not re-read the signing keys: %s", exc)
        finally:
            self._pending_refresh = None
