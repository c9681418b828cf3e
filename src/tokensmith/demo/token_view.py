"""A JWT decoded for display: header, claims and expiry, never the token itself.

Display only. Nothing here verifies a signature: the services that trust a token validate it with
``tokensmith.resource``; the pages only show what such a token says.
"""

from __future__ import annotations

import base64
import binascii
import json
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any


@dataclass(frozen=True, slots=True)
class TokenView:
    header: dict[str, Any]
    claims: dict[str, Any]

    @property
    def expires_at(self) -> datetime | None:
        exp = self.claims.get("exp")
        return datetime.fromtimestamp(exp, UTC) if isinstance(exp, int | float) else None

    def expiry_text(self, now: datetime | None = None) -> str:
        expires_at = self.expires_at
        if expires_at is None:
            return "no exp claim"
        remaining = int((expires_at - (now or datetime.now(UTC))).total_seconds())
        when = expires_at.strftime("%Y-%m-%d %H:%M:%S UTC")
        return f"{when} (in {remaining} s)" if remaining >= 0 else f"{when} (expired {-remaining} s ago)"

    def to_dict(self) -> dict[str, Any]:
        return {"header": self.header, "claims": self.claims}

    @classmethod
    def from_dict(cls, data: Any) -> TokenView | None:
        """The inverse of :meth:`to_dict` for JSON received from another service; None when malformed."""
        if not isinstance(data, dict):
            return None
        header, claims = data.get("header"), data.get("claims")
        if not isinstance(header, dict) or not isinstance(claims, dict):
            return None
        return cls(header=header, claims=claims)


class NotAJWT(ValueError):
    """The value is not a compact JWS with JSON header and claims."""


def _segment(part: str) -> dict[str, Any]:
    try:
        decoded = json.loads(base64.urlsafe_b64decode(part + "=" * (-len(part) % 4)))
    except (binascii.Error, ValueError) as exc:
        raise NotAJWT(f"segment is not base64url JSON: {exc}") from None
    if not isinstance(decoded, dict):
        raise NotAJWT("segment is not a JSON object")
    return decoded


def view_token(token: str) -> TokenView:
    parts = token.split(".")
    if len(parts) != 3:
        raise NotAJWT("a JWT has three dot-separated parts")
    return TokenView(header=_segment(parts[0]), claims=_segment(parts[1]))
