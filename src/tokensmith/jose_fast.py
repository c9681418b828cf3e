"""Compact JWS signing and verification without joserfc's generic pipeline, for the token endpoint's hot path.

joserfc's ``jwt.encode``/``jwt.decode`` build a registry, look keys up, validate headers and run several
JSON/base64 passes per call, which costs about as much CPU as the ECDSA operation itself; and the exchange path
parsed every subject token twice (once to choose the issuer, once in ``jwt.decode``). Here a token is parsed once
into a :class:`CompactJWT` that both the routing and the verification use, and headers we sign are encoded once.
Keys are joserfc key objects, accepted by joserfc's own ``check_key`` and ``check_key_op``. ES256 and RS256
signatures are made and checked with ``cryptography`` directly (RFC 7518's encodings, a few lines); every other
asymmetric algorithm goes through joserfc's algorithm objects (``JWSRegistry.algorithms``).

Nothing joserfc refuses is accepted: base64url decoding as strict as joserfc's (canonical, unpadded),
the same size limits, the same header registry (unregistered header parameters are refused), and in addition
``crit`` and ``b64`` are refused outright (no token of ours or of an OAuth issuer uses them; ``b64: false``
would change what the signature covers). Only asymmetric algorithms are ever used: no ``none``, no HMAC.

Two bounded caches spare the per-token repeats: decoded headers per exact header segment (only the plain,
accepted kind, handed out read-only) and joserfc's ``check_key`` verdict per algorithm and key object (reused only
while what it read of the key is unchanged). See ``_header_cache`` and ``_key_checks``.
"""

from __future__ import annotations

import binascii
import calendar
import datetime
import functools
import json
import threading
import weakref
from collections import OrderedDict
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from types import MappingProxyType
from typing import Any, cast

from cryptography.exceptions import InvalidSignature
from cryptography.hazmat.primitives import hashes
from cryptography.hazmat.primitives.asymmetric import ec, padding, rsa
from cryptography.hazmat.primitives.asymmetric.utils import decode_dss_signature, encode_dss_signature
from joserfc.errors import JoseError
from joserfc.jwa import JWSAlgModel
from joserfc.jwk import ECKey, OKPKey, RSAKey
from joserfc.jws import JWSRegistry
from joserfc.util import urlsafe_b64encode

from tokensmith.json_text import json_dumper

AsymmetricKey = ECKey | RSAKey | OKPKey

# joserfc's default JWS registry: the registered header parameters and their value checks, strict about
# unregistered ones, exactly what `jwt.decode` applies. Its size limits are applied the same way below.
_HEADER_REGISTRY = JWSRegistry()
_MAX_HEADER = _HEADER_REGISTRY.max_header_length
_MAX_PAYLOAD = _HEADER_REGISTRY.max_payload_length
_MAX_SIGNATURE = _HEADER_REGISTRY.max_signature_length
_MAX_TOKEN = _MAX_HEADER + _MAX_PAYLOAD + _MAX_SIGNATURE + 2
# Headers whose only check in joserfc's registry is "a string" (`alg` is also required): what our tokens and
# those of OAuth issuers carry. Any other header goes through joserfc's registry check.
_STRING_HEADERS = frozenset({"alg", "kid", "typ"})
# Header parameters refused whatever their value (see the module docstring).
_REFUSED_HEADERS = ("crit", "b64")
_ASYMMETRIC_KEY_TYPES = frozenset({"RSA", "EC", "OKP"})
# ES256 and RS256, the server's own algorithms, are computed with cryptography directly, with these objects built
# once: joserfc's algorithm objects build them per call and find the key through `get_op_key`, ~20 µs a token
# exchange. Same encodings (RFC 7518 3.3 and 3.4; the tests compare with joserfc). Other algorithms go through
# joserfc's algorithm objects.
_SHA256 = hashes.SHA256()
_ECDSA_SHA256 = ec.ECDSA(_SHA256)
_PKCS1V15 = padding.PKCS1v15()
_P256_BYTES = 32  # the length of each of R and S in an ES256 signature
# joserfc's `convert_claims`: these claims may be datetimes and are turned into NumericDates.
_TIME_CLAIMS = ("exp", "iat", "nbf")
# joserfc's claim encoding (`convert_claims`), built once instead of per call.
_CLAIMS_JSON = json_dumper(ensure_ascii=False, compact=True)
_JSON_DECODER = json.JSONDecoder()
_FROM_URLSAFE = bytes.maketrans(b"-_", b"+/")
_TO_URLSAFE = bytes.maketrans(b"+/", b"-_")
_PADDING = (b"", b"===", b"==", b"=")  # by len % 4 (1 is never valid: the round trip below refuses it)

# Decoded headers, per exact header segment. Every token signed by one key carries the same header segment, so
# decoding it (base64url, UTF-8, JSON) and checking it is done once per segment, not per token. Only headers the
# fast check of `check_header` accepts are kept (string `alg`, optional string `kid`/`typ`, nothing else), so a
# cached header is flat, made of immutable strings, and is handed out read-only (a MappingProxyType over a dict
# nothing else references): no caller can change what the next token with that segment gets. A hit needs the
# very same bytes as a segment that was decoded and accepted; anything else is decoded as before. Bounded (LRU):
# a flood of distinct headers only evicts (segments are at most 512 bytes, joserfc's header limit).
_HEADER_CACHE_SIZE = 256
_HEADER_CACHE_MAX_SEGMENT = 512
_header_cache: OrderedDict[bytes, Mapping[str, Any]] = OrderedDict()
# The headers in that cache, by id, each holding its header: `check_header` recognises one by identity (the id
# cannot be reused while the entry holds the object) and knows it passed. Such a header cannot change (read-only,
# flat strings), so the verdict cannot go stale. Changed only under the lock, together with the cache.
_checked_headers: dict[int, Mapping[str, Any]] = {}
_header_cache_lock = threading.Lock()
# Keys joserfc's `check_key` and `check_key_op` accepted, per (algorithm, id of the key, operation): a weak
# reference to the key (so the id cannot be matched by another object: a dead reference never matches, and a
# retired private key is not kept alive) and what the checks read that can change on a key object (the `use`,
# `alg` and `key_ops` parameters and the underlying key; `key_type` is per class), compared on every hit, so a key
# changed after its check is checked again. Bounded.
_KEY_CHECKS_SIZE = 64
_key_checks: dict[tuple[str, int, str], tuple[weakref.ref[Any], Any, Any, Any, Any]] = {}


def b64url_decode(segment: bytes) -> bytes:
    """Strict base64url without padding, as strict as joserfc's ``urlsafe_b64decode``: the decoded bytes must
    encode back to exactly ``segment``, which refuses "+", "/", "=", any other character outside the alphabet,
    a length of 4n+1 and non-zero trailing bits (so a token has one spelling). Raises ValueError."""
    data = binascii.a2b_base64(segment.translate(_FROM_URLSAFE) + _PADDING[len(segment) % 4])
    if binascii.b2a_base64(data, newline=False).translate(_TO_URLSAFE).rstrip(b"=") != segment:
        raise ValueError("not canonical base64url")
    return data


class MalformedJWT(ValueError):
    """Not a compact JWS we can read. The message completes "<the token> ...", e.g. "is not a JWT: ..."."""


class UnacceptableJWT(ValueError):
    """A well-formed JWS whose header or algorithm is refused."""


@dataclass(frozen=True, slots=True)
class CompactJWT:
    """A compact JWS, parsed once: its header and (unless deferred) its claims, plus what the signature covers.

    Nothing in it is verified: it only serves to choose the key, then :func:`verify_signature` checks it.
    """

    header: Mapping[str, Any]  # read-only: a header from parse may be shared with other tokens of the same key
    signing_input: bytes  # ASCII header segment "." payload segment
    payload_segment: bytes
    signature: bytes
    claims: dict[str, Any] | None  # None when parsed with claims=False (decode later with payload_claims)


def _json_object(segment: bytes, what: str) -> dict[str, Any]:
    try:
        # UTF-8 only (RFC 7515 5.2; JSON text exchanged between systems is UTF-8, RFC 8259 8.1).
        value = _JSON_DECODER.decode(b64url_decode(segment).decode("utf-8"))
    except (ValueError, TypeError, binascii.Error, RecursionError):
        raise MalformedJWT(f"is not a JWT: its {what} is not base64url-encoded JSON") from None
    if not isinstance(value, dict):
        raise MalformedJWT(f"is not a JWT: its {what} is not a JSON object")
    return value


def parse(token: str, *, claims: bool = True) -> CompactJWT:
    """Split and decode a compact JWS (strict base64url, JSON objects). ``claims=False`` defers the payload's
    JSON to :func:`payload_claims`, to read it only once the signature verified."""
    if len(token) > _MAX_TOKEN:
        raise MalformedJWT("is not a JWT: it is too large")
    try:
        raw = token.encode("ascii")
    except UnicodeEncodeError:
        raise MalformedJWT("is not a JWT: it is not ASCII") from None
    parts = raw.split(b".")
    if len(parts) != 3:
        if len(parts) == 5:
            raise MalformedJWT("is an encrypted JWT (JWE); only signed JWTs are accepted")
        raise MalformedJWT("is not a JWT (expected three base64url parts separated by dots)")
    header_segment, payload_segment, signature_segment = parts
    if not header_segment or not payload_segment:
        raise MalformedJWT("is not a JWT (expected three base64url parts separated by dots)")
    if len(header_segment) > _MAX_HEADER:
        raise MalformedJWT("is not a JWT: its header is too large")
    if len(payload_segment) > _MAX_PAYLOAD:
        raise MalformedJWT("is not a JWT: its payload is too large")
    if len(signature_segment) > _MAX_SIGNATURE:
        raise MalformedJWT("is not a JWT: its signature is too large")
    header = _header(header_segment)
    try:
        signature = b64url_decode(signature_segment)
    except (ValueError, TypeError, binascii.Error):
        raise MalformedJWT("is not a JWT: its signature is not base64url-encoded") from None
    return CompactJWT(
        header=header,
        signing_input=raw[: len(header_segment) + 1 + len(payload_segment)],
        payload_segment=payload_segment,
        signature=signature,
        claims=_json_object(payload_segment, "payload") if claims else None,
    )


def _header(segment: bytes) -> Mapping[str, Any]:
    """The decoded header segment: from the cache for a segment already decoded and accepted, else decoded now
    (and kept if it is one of the plain headers of signed tokens, see ``_header_cache``)."""
    cacheable = len(segment) <= _HEADER_CACHE_MAX_SEGMENT
    if cacheable:
        cached = _header_cache.get(segment)
        if cached is not None:
            # contextlib.suppress would cost more than the lookup; KeyError: evicted by another thread meanwhile,
            # the header is still the right one.
            try:  # noqa: SIM105
                _header_cache.move_to_end(segment)
            except KeyError:
                pass
            return cached
    header = _json_object(segment, "header")
    if not cacheable or not _is_plain_header(header):
        return header
    frozen = MappingProxyType(header)  # `header` is referenced by nothing else
    with _header_cache_lock:
        # The two maps hold the same headers (so `_checked_headers` is bounded too); a header dropped from them
        # that a live token still holds is then checked the long way, which only costs time.
        replaced = _header_cache.pop(segment, None)  # another thread decoded the same segment meanwhile
        if replaced is not None:
            del _checked_headers[id(replaced)]
        _header_cache[segment] = frozen
        _checked_headers[id(frozen)] = frozen
        while len(_header_cache) > _HEADER_CACHE_SIZE:
            del _checked_headers[id(_header_cache.popitem(last=False)[1])]
    return frozen


def _is_plain_header(header: Mapping[str, Any]) -> bool:
    # The common case of check_header, decided without the generic registry walk: only string-valued
    # alg/kid/typ, `alg` present (so no `crit` or `b64` either).
    return (
        "alg" in header and _STRING_HEADERS.issuperset(header) and all(type(value) is str for value in header.values())
    )


def payload_claims(token: CompactJWT) -> dict[str, Any]:
    """The claims of a parsed token (decoding its payload now if :func:`parse` deferred it)."""
    if token.claims is not None:
        return token.claims
    return _json_object(token.payload_segment, "payload")


def check_header(header: Mapping[str, Any]) -> None:
    """What joserfc's registry checks in a JWS header (required `alg`, value types, no unregistered
    parameters), and no ``crit`` or ``b64`` at all. Raises :class:`UnacceptableJWT`."""
    if _checked_headers.get(id(header)) is header:
        return  # this very (read-only) header object passed when parse cached it
    for name in _REFUSED_HEADERS:
        if name in header:
            raise UnacceptableJWT(f"the {name!r} header parameter is not accepted")
    if _is_plain_header(header):
        return
    try:
        _HEADER_REGISTRY.check_header(dict(header))
    except JoseError as exc:
        raise UnacceptableJWT(f"unacceptable header: {exc}") from None


def algorithm(alg: str) -> JWSAlgModel:
    """joserfc's algorithm object for an asymmetric JWS algorithm; ``none`` and HMAC are refused here too."""
    found = JWSRegistry.algorithms.get(alg)
    if found is None or found.key_type not in _ASYMMETRIC_KEY_TYPES:
        raise UnacceptableJWT(f"signature algorithm {alg!r} is not accepted")
    return found


def verify_signature(token: CompactJWT, alg: str, key: AsymmetricKey) -> bool:
    """Check the header, that ``key`` suits ``alg`` (joserfc's ``check_key``: type, curve, `use`, `alg`; and its
    ``check_key_op``) and the signature. ``alg`` is the caller's allow-listed choice and must be the header's.
    Raises :class:`UnacceptableJWT` for a refused header, algorithm or key; False for a bad signature."""
    if token.header.get("alg") != alg:
        raise UnacceptableJWT(f"the token's algorithm is not {alg!r}")
    check_header(token.header)
    algo = algorithm(alg)
    _check_key(algo, key, "verify")
    if alg == "ES256" and isinstance(key, ECKey):
        return _es256_verify(key.public_key, token.signing_input, token.signature)
    if alg == "RS256" and isinstance(key, RSAKey):
        return _rs256_verify(key.public_key, token.signing_input, token.signature)
    return algo.verify(token.signing_input, token.signature, key)


def _check_key(algo: JWSAlgModel, key: AsymmetricKey, operation: str) -> None:
    """joserfc's ``algo.check_key(key)`` and ``key.check_key_op(operation)``, run once per algorithm, key object and
    operation: the verdict is reused while what they read of the key is unchanged (see ``_key_checks``). Raises
    :class:`UnacceptableJWT`."""
    slot = (algo.name, id(key), operation)
    seen = _key_checks.get(slot)
    params = key.dict_value
    if (
        seen is not None
        and seen[0]() is key
        and seen[1] is key.raw_value
        and seen[2] == params.get("use")
        and seen[3] == params.get("alg")
        and seen[4] == params.get("key_ops")
    ):
        return
    try:
        algo.check_key(key)
        key.check_key_op(operation)
    except JoseError as exc:
        raise UnacceptableJWT(f"key does not suit {algo.name}: {exc}") from None
    if len(_key_checks) >= _KEY_CHECKS_SIZE:
        _key_checks.clear()  # a handful of keys are live at a time: rarely reached, and then only slower
    # What the checks read, read again after they passed (any exception above left no entry).
    _key_checks[slot] = (
        weakref.ref(key),
        key.raw_value,
        params.get("use"),
        params.get("alg"),
        params.get("key_ops"),
    )


def _es256_sign(private_key: ec.EllipticCurvePrivateKey, signing_input: bytes) -> bytes:
    # RFC 7518 3.4: R and S as 32-byte big-endian integers, concatenated (cryptography returns DER).
    r, s = decode_dss_signature(private_key.sign(signing_input, _ECDSA_SHA256))
    return r.to_bytes(_P256_BYTES, "big") + s.to_bytes(_P256_BYTES, "big")


def _es256_verify(public_key: ec.EllipticCurvePublicKey, signing_input: bytes, signature: bytes) -> bool:
    if len(signature) != 2 * _P256_BYTES:
        return False
    r = int.from_bytes(signature[:_P256_BYTES], "big")
    s = int.from_bytes(signature[_P256_BYTES:], "big")
    try:
        public_key.verify(encode_dss_signature(r, s), signing_input, _ECDSA_SHA256)
    except InvalidSignature:
        return False
    return True


def _rs256_sign(private_key: rsa.RSAPrivateKey, signing_input: bytes) -> bytes:
    return private_key.sign(signing_input, _PKCS1V15, _SHA256)


def _rs256_verify(public_key: rsa.RSAPublicKey, signing_input: bytes, signature: bytes) -> bool:
    try:
        public_key.verify(signature, signing_input, _PKCS1V15, _SHA256)
    except InvalidSignature:
        return False
    return True


def encode_header(header: Mapping[str, Any]) -> bytes:
    """A header segment, base64url of compact JSON as joserfc writes it; checked like joserfc checks headers it
    signs. Meant to be computed once per (key, alg, typ) and reused."""
    check_header(header)
    text = json.dumps(dict(header), ensure_ascii=True, separators=(",", ":"))
    return urlsafe_b64encode(text.encode("ascii"))


def sign(header_segment: bytes, claims: Mapping[str, Any], alg: str, key: AsymmetricKey) -> str:
    """A compact JWS of ``claims`` under a header from :func:`encode_header`: byte for byte what
    ``joserfc.jwt.encode`` produces for the same header and claims (for ES256, whose signatures are randomized,
    the same but for the signature)."""
    signer, signing_input = prepare_signature(header_segment, claims, alg, key)
    return compact(signing_input, signer(signing_input))


Signer = Callable[[bytes], bytes]


def prepare_signature(
    header_segment: bytes, claims: Mapping[str, Any], alg: str, key: AsymmetricKey
) -> tuple[Signer, bytes]:
    """:func:`sign` up to the signature: a function making it (after the key checks) and the signing input.
    ``compact(signing_input, signer(signing_input))`` finishes it; the signer may run on another thread."""
    algo = algorithm(alg)
    _check_key(algo, key, "sign")
    # Datetime times become NumericDate; the caller's mapping is copied (once) only when there is one to convert.
    converted: dict[str, Any] | None = None
    for name in _TIME_CLAIMS:
        value = claims.get(name)
        if isinstance(value, datetime.datetime):
            if converted is None:
                converted = dict(claims)
            converted[name] = calendar.timegm(value.utctimetuple())
    payload = _CLAIMS_JSON(claims if converted is None else converted).encode("utf-8")
    return _signer(algo, key), header_segment + b"." + urlsafe_b64encode(payload)


def _signer(algo: JWSAlgModel, key: AsymmetricKey) -> Signer:
    # The joserfc key class, not cryptography's abstract key classes, decides: an ABC isinstance check costs
    # microseconds per token. `check_key` matched the key type to the algorithm and `check_key_op("sign")` made
    # sure the key is private, so its raw value is the private key.
    if algo.name == "ES256" and isinstance(key, ECKey):
        return functools.partial(_es256_sign, cast(ec.EllipticCurvePrivateKey, key.raw_value))
    if algo.name == "RS256" and isinstance(key, RSAKey):
        return functools.partial(_rs256_sign, cast(rsa.RSAPrivateKey, key.raw_value))
    return functools.partial(_joserfc_sign, algo, key)


def _joserfc_sign(algo: JWSAlgModel, key: AsymmetricKey, signing_input: bytes) -> bytes:
    return algo.sign(signing_input, key)


def compact(signing_input: bytes, signature: bytes) -> str:
    """The compact serialization: the signing input and the base64url signature."""
    return (signing_input + b"." + urlsafe_b64encode(signature)).decode("ascii")


__all__ = [
    "AsymmetricKey",
    "CompactJWT",
    "MalformedJWT",
    "Signer",
    "UnacceptableJWT",
    "algorithm",
    "b64url_decode",
    "check_header",
    "compact",
    "encode_header",
    "parse",
    "payload_claims",
    "prepare_signature",
    "sign",
    "verify_signature",
]
