"""The tokens a conformance run reads and makes: claims read without verification, and tokens that must be refused
(a tampered signature, ``alg: none``, a foreign issuer's signature)."""

from __future__ import annotations

import base64
import json
import secrets
import time
from collections.abc import Mapping
from typing import Any

from joserfc.jwk import ECKey

from tokensmith import jose

FOREIGN_ALGORITHM = "ES256"


def claims_of(token: str) -> dict[str, Any] | None:
    """The payload of a JWT, unverified (to learn its ``sub``, ``scope``, ``act``); None for any other token."""
    try:
        return jose.parse(token, strict_header=False).claims
    except jose.InvalidJWT:
        return None


def scopes_of(claims: Mapping[str, Any]) -> frozenset[str] | None:
    """``scope`` as a space-delimited string or a JSON array, or ``scp``; None when the token says nothing."""
    raw = claims.get("scope", claims.get("scp"))
    if isinstance(raw, str):
        return frozenset(raw.split())
    if isinstance(raw, list):
        return frozenset(s for s in raw if isinstance(s, str))
    return None


def _b64(data: bytes) -> str:
    return base64.urlsafe_b64encode(data).rstrip(b"=").decode("ascii")


def _unb64(segment: str) -> bytes:
    return base64.urlsafe_b64decode(segment + "=" * (-len(segment) % 4))


def tampered(token: str) -> str:
    """The same token with one bit of its signature flipped (or, for a token that is not a JWT, of its last
    character), so everything but the signature is what the server issued."""
    head, dot, signature = token.rpartition(".")
    if dot and head.count(".") == 1 and signature:
        try:
            raw = bytearray(_unb64(signature))
        except ValueError:
            raw = bytearray()
        if raw:
            raw[len(raw) // 2] ^= 0x01
            return f"{head}.{_b64(bytes(raw))}"
    last = token[-1:] or "A"
    return token[:-1] + ("B" if last == "A" else "A")


def unsigned(token: str) -> str | None:
    """The token's header and claims re-sent with ``alg: none`` and no signature (RFC 7519 6); None if not a JWT."""
    parts = token.split(".")
    if len(parts) != 3:
        return None
    try:
        header = json.loads(_unb64(parts[0]))
    except ValueError:
        return None
    if not isinstance(header, dict):
        return None
    header = {**header, "alg": "none"}
    header.pop("kid", None)
    return f"{_b64(json.dumps(header, separators=(',', ':')).encode())}.{parts[1]}."


def foreign_token(template: Mapping[str, Any] | None, *, issuer: str, audience: list[str], lifetime: int = 300) -> str:
    """A JWT signed by a key made for this run and issued by ``issuer`` (an issuer the server cannot trust): the
    template token's user and scope claims, its own ``iss``, ``aud``, times and ``jti``."""
    now = int(time.time())
    claims: dict[str, Any] = {}
    if template is not None:
        claims.update({k: v for k, v in template.items() if k in ("sub", "scope", "scp", "client_id")})
    claims.setdefault("sub", "conformance-user")
    claims.update(iss=issuer, aud=audience, iat=now, nbf=now, exp=now + lifetime, jti=secrets.token_hex(16))
    jwk = ECKey.generate_key("P-256", parameters={"kid": f"conformance-{secrets.token_hex(4)}"})
    return jose.Key(jwk, [FOREIGN_ALGORITHM]).sign(claims, alg=FOREIGN_ALGORITHM)


__all__ = ["claims_of", "foreign_token", "scopes_of", "tampered", "unsigned"]
