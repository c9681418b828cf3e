"""RFC 6750 errors a resource server answers with, and the ``WWW-Authenticate`` header each one carries."""

from __future__ import annotations

import re
from collections.abc import Iterable

# RFC 6750 3: error_description and scope use %x20-21 / %x23-5B / %x5D-7E; anything else (quotes, backslashes,
# control characters, non-ASCII) is dropped so that a description can never break or inject into the header.
_UNSAFE = re.compile(r"[^\x20\x21\x23-\x5b\x5d-\x7e]")


def _quoted(value: str) -> str:
    return '"' + _UNSAFE.sub("", value) + '"'


class BearerTokenError(Exception):
    """A request the resource server refuses; ``status_code`` and :meth:`www_authenticate` make the response."""

    status_code = 401
    error: str | None = "invalid_token"

    def __init__(self, description: str, *, scope: Iterable[str] = ()) -> None:
        super().__init__(description)
        self.description = description
        self.scope = tuple(scope)

    def www_authenticate(self, realm: str | None = None) -> str:
        params = []
        if realm:
            params.append(f"realm={_quoted(realm)}")
        if self.error:
            params.append(f"error={_quoted(self.error)}")
            if self.description:
                params.append(f"error_description={_quoted(self.description)}")
        if self.scope:
            params.append(f"scope={_quoted(' '.join(self.scope))}")
        return "Bearer " + ", ".join(params) if params else "Bearer"

    def to_dict(self) -> dict[str, str]:
        return {"error": self.error or "unauthorized", "error_description": self.description}


class MissingToken(BearerTokenError):
    """No bearer token at all: RFC 6750 3.1 says the challenge then carries no error code."""

    error = None


class InvalidToken(BearerTokenError):
    """Malformed, badly signed, expired, not yet valid, from another issuer, or for another audience."""


class InsufficientScope(BearerTokenError):
    """A valid token without the scopes the route needs (403, naming them)."""

    status_code = 403
    error = "insufficient_scope"

    def __init__(self, required: Iterable[str], description: str | None = None) -> None:
        required = tuple(required)
        super().__init__(description or f"this resource needs scope {' '.join(required)}", scope=required)


class ValidatorUnavailable(Exception):
    """Tokens cannot be checked right now (no keys and the authorization server unreachable): answer 503."""
