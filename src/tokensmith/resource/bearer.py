"""Reading the bearer token from an ``Authorization`` header (RFC 6750 2.1), shared by middleware and dependencies."""

from __future__ import annotations

import re
from typing import Protocol

from tokensmith.resource.errors import InvalidToken, MissingToken
from tokensmith.resource.principal import Principal

# RFC 6750 2.1: b64token = 1*( ALPHA / DIGIT / "-" / "." / "_" / "~" / "+" / "/" ) *"="
_B64TOKEN = re.compile(r"[A-Za-z0-9\-._~+/]+=*")


class TokenVerifier(Protocol):
    """What the middleware and dependencies need: :class:`TokenValidator` or :class:`IntrospectionValidator`."""

    async def validate(self, token: str) -> Principal: ...


def bearer_token(authorization: str | None) -> str:
    """The token of ``Authorization: Bearer <token>``; :class:`MissingToken` when there is no bearer credential."""
    if not authorization:
        raise MissingToken("this resource needs a bearer token")
    scheme, _, credentials = authorization.strip().partition(" ")
    if scheme.lower() != "bearer":
        raise MissingToken("this resource needs a bearer token")
    credentials = credentials.strip()
    if not _B64TOKEN.fullmatch(credentials):
        raise InvalidToken("the Authorization header does not carry a well-formed bearer token")
    return credentials
