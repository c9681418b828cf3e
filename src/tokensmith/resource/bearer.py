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


def authorization_credentials(authorization: str | None, *, dpop: bool) -> tuple[str, str]:
    """The scheme (``bearer``, or ``dpop`` when ``dpop``, RFC 9449 7.1) and token of an ``Authorization`` header;
    :class:`MissingToken` when it carries no such credential."""
    if not authorization:
        raise MissingToken("this resource needs a bearer token")
    scheme, _, credentials = authorization.strip().partition(" ")
    scheme = scheme.lower()
    if scheme != "bearer" and not (dpop and scheme == "dpop"):
        raise MissingToken("this resource needs a bearer token")
    credentials = credentials.strip()
    if not _B64TOKEN.fullmatch(credentials):
        raise InvalidToken(
            f"the Authorization header does not carry a well-formed {'DPoP' if scheme == 'dpop' else scheme} token"
        )
    return scheme, credentials


def bearer_token(authorization: str | None) -> str:
    """The token of ``Authorization: Bearer <token>``; :class:`MissingToken` when there is no bearer credential."""
    return authorization_credentials(authorization, dpop=False)[1]
