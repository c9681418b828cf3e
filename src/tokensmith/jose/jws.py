"""A compact JWS, parsed once: header, claims, signing input and signature, read with joserfc's public API.

Refused here, before any key is looked at: anything over joserfc's size limits, a JWE, base64url that is not
canonical, a header or payload that is not a JSON object, a header joserfc's registry refuses (types of the
registered parameters; unregistered ones too unless ``strict_header=False``), and ``crit`` and ``b64`` outright:
no token of ours or of an OAuth issuer uses them, and ``b64: false`` would change what the signature covers.
"""

from __future__ import annotations

import json
from dataclasses import dataclass
from typing import Any

from joserfc import jws
from joserfc.errors import ExceededSizeError, JoseError
from joserfc.util import urlsafe_b64decode

from tokensmith.jose.errors import MalformedJWT, UnacceptableJWT

_STRICT = jws.JWSRegistry()
_LENIENT = jws.JWSRegistry(strict_check_header=False)
# A DPoP proof (RFC 9449 4.2) carries its public key in the header: an RSA-4096 `jwk` alone is some 750 bytes.
_KEY_IN_HEADER = jws.JWSRegistry(strict_check_header=False)
_KEY_IN_HEADER.max_header_length = 4096
MAX_TOKEN_LENGTH = _STRICT.max_header_length + _STRICT.max_payload_length + _STRICT.max_signature_length + 2
_REFUSED_HEADERS = ("crit", "b64")


@dataclass(frozen=True, slots=True)
class CompactJWS:
    """A compact JWS whose header passed the registry checks; nothing in it is verified yet."""

    header: dict[str, Any]
    claims: dict[str, Any]
    signing_input: bytes  # the ASCII header segment "." payload segment
    signature: bytes

    @property
    def alg(self) -> str:
        alg: str = self.header["alg"]  # the registry made sure it is a string
        return alg

    @property
    def kid(self) -> str | None:
        kid: str | None = self.header.get("kid")  # a string when present (the registry)
        return kid


def parse(token: str, *, strict_header: bool = True, key_in_header: bool = False) -> CompactJWS:
    """Split and decode ``token``. Raises :class:`MalformedJWT` or, for a refused header, :class:`UnacceptableJWT`.
    ``key_in_header``: a token carrying its public key in a ``jwk`` header (a DPoP proof) may have a larger header;
    its other header parameters are checked as with ``strict_header=False``."""
    if len(token) > MAX_TOKEN_LENGTH + (_KEY_IN_HEADER.max_header_length if key_in_header else 0):
        raise MalformedJWT("is not a JWT: it is too large")
    try:
        raw = token.encode("ascii")
    except UnicodeEncodeError:
        raise MalformedJWT("is not a JWT: it is not ASCII") from None
    if b"=" in raw:  # RFC 7515 2: base64url without padding (older joserfc releases accept "=")
        raise MalformedJWT("is not a JWT: its parts are not unpadded base64url")
    dots = raw.count(b".")
    if dots == 4:
        raise MalformedJWT("is an encrypted JWT (JWE); only signed JWTs are accepted")
    if dots != 2:
        raise MalformedJWT("is not a JWT (expected three base64url parts separated by dots)")
    registry = _KEY_IN_HEADER if key_in_header else _STRICT if strict_header else _LENIENT
    try:
        obj = jws.extract_compact(raw, registry=registry)
        signature = urlsafe_b64decode(obj.segments["signature"])
    except ExceededSizeError as exc:
        raise MalformedJWT(f"is not a JWT: it is too large ({exc.description})") from None
    except (JoseError, ValueError, TypeError, RecursionError):
        raise MalformedJWT("is not a JWT: its parts are not base64url-encoded JSON") from None
    header = obj.protected
    if not isinstance(header, dict):
        raise MalformedJWT("is not a JWT: its header is not a JSON object")
    for name in _REFUSED_HEADERS:
        if name in header:
            raise UnacceptableJWT(f"the {name!r} header parameter is not accepted")
    try:
        registry.check_header(header)
    except JoseError as exc:
        raise UnacceptableJWT(f"unacceptable header: {exc}") from None
    try:
        claims = json.loads(obj.payload.decode("utf-8"))  # UTF-8 only (RFC 7515 5.2, RFC 8259 8.1)
    except (ValueError, RecursionError):
        raise MalformedJWT("is not a JWT: its payload is not JSON") from None
    if not isinstance(claims, dict):
        raise MalformedJWT("is not a JWT: its payload is not a JSON object")
    signing_input = raw[: raw.rindex(b".")]
    return CompactJWS(header=header, claims=claims, signing_input=signing_input, signature=signature)
