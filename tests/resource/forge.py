"""Hand-built hostile tokens that no JOSE library would sign for us."""

from __future__ import annotations

import base64
import hashlib
import hmac
import json
from typing import Any


def b64(data: bytes) -> str:
    return base64.urlsafe_b64encode(data).rstrip(b"=").decode("ascii")


def unsigned(header: dict[str, Any], claims: dict[str, Any]) -> str:
    """An ``alg: none`` token (empty signature)."""
    return f"{b64(json.dumps(header).encode())}.{b64(json.dumps(claims).encode())}."


def hmac_signed(header: dict[str, Any], claims: dict[str, Any], secret: bytes) -> str:
    """An HS256 token keyed with ``secret`` (the classic attack: the issuer's RSA public key as the HMAC secret)."""
    signing_input = f"{b64(json.dumps(header).encode())}.{b64(json.dumps(claims).encode())}"
    signature = hmac.new(secret, signing_input.encode("ascii"), hashlib.sha256).digest()
    return f"{signing_input}.{b64(signature)}"


def claims_of(token: str) -> dict[str, Any]:
    payload = token.split(".")[1]
    decoded: dict[str, Any] = json.loads(base64.urlsafe_b64decode(payload + "=" * (-len(payload) % 4)))
    return decoded
