"""The time claims of a verified JWT (RFC 7519 4.1.4-4.1.6), checked with a leeway for clock skew."""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from tokensmith.jose.errors import InvalidClaims


def _numeric(claims: Mapping[str, Any], name: str) -> float | None:
    value = claims.get(name)
    if value is None:
        return None
    if isinstance(value, bool) or not isinstance(value, int | float):
        raise InvalidClaims(f"has an invalid '{name}': it must be a number")
    return float(value)


def check_times(claims: Mapping[str, Any], *, now: float, leeway: float) -> float:
    """``exp`` (required) not past, ``nbf`` and ``iat`` (optional) not in the future, each give or take ``leeway``
    seconds; returns ``exp``. Raises :class:`InvalidClaims` with a message that completes "<the token> ..."."""
    exp = _numeric(claims, "exp")
    if exp is None:
        raise InvalidClaims("has no 'exp' claim")
    if exp <= now - leeway:
        raise InvalidClaims("has expired")
    nbf = _numeric(claims, "nbf")
    if nbf is not None and nbf > now + leeway:
        raise InvalidClaims("is not valid yet ('nbf' is in the future)")
    iat = _numeric(claims, "iat")
    if iat is not None and iat > now + leeway:
        raise InvalidClaims("was issued in the future ('iat')")
    return exp
