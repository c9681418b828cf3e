"""Signing keys: generation, persistence through the store, rotation, the public JWKS, signing and verifying.

Keys are generated on first start and persisted, so a restart (or another replica) signs with the same keys.
Rotation adds a new active key per algorithm and retires the old one: it stays in the JWKS for
``retired-key-grace`` so that tokens it signed keep verifying.
"""

from __future__ import annotations

import asyncio
import time
import uuid
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any, cast

from cryptography.hazmat.primitives.asymmetric import rsa
from joserfc.errors import JoseError
from joserfc.jwk import ECKey, KeyParameters, KeySet, RSAKey

from tokensmith import jose_fast
from tokensmith.config.server import KeySettings
from tokensmith.signer_process import SignerProcess
from tokensmith.store.base import Store
from tokensmith.store.records import SigningKeyRecord

SigningKey = ECKey | RSAKey
# The key type each algorithm must use: a token can never pick a key of another type (no HS/RS confusion).
KEY_TYPE_FOR_ALG: Mapping[str, str] = {"ES256": "EC", "RS256": "RSA"}
SUPPORTED_ALGORITHMS: tuple[str, ...] = tuple(KEY_TYPE_FOR_ALG)

Clock = Callable[[], datetime]

_UNKNOWN_KEY = "signed with an unknown key"
# Signatures worth handing to the signer process (signer_process.py): an RSA-2048 signature costs ~250 µs, so
# moving it frees the event loop, while ECDSA (sign ~40 µs, verify ~70 µs) and RSA verification (~15 µs) cost
# about what the hand-over would.
OFFLOADED_SIGNATURES = frozenset({"RS256"})
# Signing on the caller's thread: the default (tests, the CLI, embedded use).
_INLINE = SignerProcess(enabled=False)
# Least time between two key re-reads triggered by an unknown `kid` (see KeyManager.verify_or_refresh).
_MIN_REFRESH_INTERVAL = 5.0


def utc_now() -> datetime:
    return datetime.now(UTC)


class SignatureError(Exception):
    """A token's signature, header or key does not verify."""


@dataclass(frozen=True, slots=True)
class VerifiedJWT:
    header: dict[str, Any]
    claims: dict[str, Any]


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
    if KEY_TYPE_FOR_ALG.get(record.alg) == "EC":
        return ECKey.import_key(record.private_jwk)
    return RSAKey.import_key(record.private_jwk)


class KeyManager:
    """The server's signing keys, loaded from the store and kept in memory (parsed once, not per token)."""

    def __init__(
        self, store: Store, settings: KeySettings, clock: Clock = utc_now, signer: SignerProcess = _INLINE
    ) -> None:
        """``signer`` computes the RSA signatures of :meth:`sign_async` (see ``OFFLOADED_SIGNATURES``): the server
        passes its signer process (signer_process.py), which runs in parallel with the event loop."""
        self._store = store
        self._signer = signer
        self._settings = settings
        self._clock = clock
        self._records: list[SigningKeyRecord] = []
        self._active: dict[str, tuple[str, SigningKey]] = {}
        self._by_kid: dict[str, tuple[str, SigningKey]] = {}
        self._jwks: dict[str, Any] = {"keys": []}
        # When a token naming a key we had not seen last made us re-read the keys (see verify_or_refresh).
        self._last_unknown_key_refresh = float("-inf")
        self._pending_refresh: asyncio.Future[None] | None = None
        # Encoded header segments by (kid, alg, typ): a header is serialised once, not per token.
        self._header_segments: dict[tuple[str, str, str], bytes] = {}

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

    async def verify_or_refresh(
        self, token: str | jose_fast.CompactJWT, *, algorithms: Sequence[str] = SUPPORTED_ALGORITHMS
    ) -> VerifiedJWT:
        """:meth:`verify`, re-reading the keys once when the token names a key this process has not seen (another
        replica generated or rotated it). Such re-reads happen at most every few seconds, so junk ``kid``s cannot
        turn every request into a database query; the other reads (start-up, the periodic refresh) do not count,
        so a key another replica added just after this one loaded is found at once. Requests that meet the new
        key while its re-read runs wait for that one read."""
        try:
            return self.verify(token, algorithms=algorithms)
        except SignatureError as exc:
            if str(exc) != _UNKNOWN_KEY:
                raise
            pending = self._pending_refresh
            if pending is None:
                now = time.monotonic()
                if now - self._last_unknown_key_refresh < _MIN_REFRESH_INTERVAL:
                    raise
                self._last_unknown_key_refresh = now
                pending = self._pending_refresh = asyncio.ensure_future(self._refresh_for_unknown_key())
        await asyncio.shield(pending)
        return self.verify(token, algorithms=algorithms)

    async def _refresh_for_unknown_key(self) -> None:
        try:
            await self.refresh()
        finally:
            self._pending_refresh = None

    def _index(self, records: Sequence[SigningKeyRecord]) -> None:
        now = self._clock()
        grace = self._settings.retired_key_grace
        usable = [
            r for r in records if r.status == "active" or (r.retired_at is not None and now - r.retired_at <= grace)
        ]
        by_kid = {r.kid: (r.alg, import_key(r)) for r in usable}
        active: dict[str, tuple[str, SigningKey]] = {}
        # The oldest active key per algorithm signs. Replicas starting together may each add a key; every one of
        # them then picks the same (first) key, whatever it has seen of the others. Rotation retires the old
        # key, so after `rotate` the new key is the only active one.
        for record in sorted(usable, key=lambda r: (r.created_at, r.kid), reverse=True):
            if record.status == "active":
                active[record.alg] = (record.kid, by_kid[record.kid][1])
        self._records = list(records)
        self._by_kid = by_kid
        self._active = active
        self._header_segments = {}  # kids may have changed; the few live combinations are re-encoded lazily
        self._jwks = {"keys": [dict(key.as_dict(private=False)) for _, key in by_kid.values()]}

    def jwks(self) -> dict[str, Any]:
        """The public JWK Set (active and recently retired keys)."""
        return self._jwks

    def sign(self, claims: Mapping[str, Any], *, alg: str, typ: str = "JWT") -> str:
        """A compact JWS of ``claims`` with the active key for ``alg``: the same token ``joserfc.jwt.encode`` makes
        (header ``{"typ", "alg", "kid"}``, compact JSON), without its per-call pipeline (see
        :mod:`tokensmith.jose_fast`)."""
        key, header_segment = self._signing_key(alg, typ)
        return jose_fast.sign(header_segment, claims, alg, key)

    async def sign_async(self, claims: Mapping[str, Any], *, alg: str, typ: str = "JWT") -> str:
        """:meth:`sign`; an RSA signature is computed by the signer process, in parallel with the event loop."""
        key, header_segment = self._signing_key(alg, typ)
        if alg not in OFFLOADED_SIGNATURES:
            return jose_fast.sign(header_segment, claims, alg, key)
        # prepare_signature checks the key (private, of the algorithm's type) before anything is handed over.
        _, signing_input = jose_fast.prepare_signature(header_segment, claims, alg, key)
        private_key = cast(rsa.RSAPrivateKey, key.raw_value)
        return jose_fast.compact(signing_input, await self._signer.sign_rs256(private_key, signing_input))

    def _signing_key(self, alg: str, typ: str) -> tuple[SigningKey, bytes]:
        """The active key for ``alg`` and the encoded header segment it signs under."""
        try:
            kid, key = self._active[alg]
        except KeyError:
            raise ValueError(f"no active {alg} signing key; configured keys: {sorted(self._active)}") from None
        cache_key = (kid, alg, typ)
        header_segment = self._header_segments.get(cache_key)
        if header_segment is None:
            # joserfc's `jwt.encode` puts its default `typ` first: keep that order, so tokens are identical.
            header_segment = jose_fast.encode_header({"typ": typ, "alg": alg, "kid": kid})
            self._header_segments[cache_key] = header_segment
        return key, header_segment

    def verify(
        self, token: str | jose_fast.CompactJWT, *, algorithms: Sequence[str] = SUPPORTED_ALGORITHMS
    ) -> VerifiedJWT:
        """Verify the signature of a JWT this server signed. Claims are the caller's to check.

        ``token`` may be already parsed (:func:`tokensmith.jose_fast.parse`) by a caller that needed its claims
        to route it: it is then not parsed again."""
        if isinstance(token, str):
            try:
                parsed = jose_fast.parse(token, claims=False)  # the payload is read once the signature verified
            except jose_fast.MalformedJWT as exc:
                raise SignatureError(f"malformed JWT: {exc}") from None
        else:
            parsed = token
        header = parsed.header
        alg, kid = header.get("alg"), header.get("kid")
        if alg not in algorithms or alg not in KEY_TYPE_FOR_ALG:
            raise SignatureError(f"signature algorithm {alg!r} is not accepted")
        entry = self._by_kid.get(kid) if isinstance(kid, str) else None
        if entry is None:
            raise SignatureError(_UNKNOWN_KEY)
        key_alg, key = entry
        if key_alg != alg:
            raise SignatureError(f"key {kid} is for {key_alg}, not {alg}")
        try:
            if not jose_fast.verify_signature(parsed, alg, key):
                raise SignatureError("signature does not verify")
            claims = jose_fast.payload_claims(parsed)
        except jose_fast.MalformedJWT as exc:
            raise SignatureError(f"malformed JWT: {exc}") from None
        except jose_fast.UnacceptableJWT as exc:
            raise SignatureError(str(exc)) from None
        except (JoseError, ValueError, TypeError) as exc:
            raise SignatureError(f"signature does not verify: {exc}") from None
        return VerifiedJWT(header=dict(header), claims=dict(claims))


def public_keyset(jwks: Mapping[str, Any]) -> KeySet:
    return KeySet.import_key_set(dict(jwks))  # type: ignore[arg-type]
