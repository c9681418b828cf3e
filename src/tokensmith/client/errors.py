"""Typed failures of the client library. Messages never contain a token or a client secret."""

from __future__ import annotations


class TokenClientError(Exception):
    """Base class of every error raised by :mod:`tokensmith.client`."""


class RegistrationError(TokenClientError):
    """A client registration is unknown or misconfigured (names the registration and the problem)."""


class DiscoveryError(TokenClientError):
    """The authorization server's metadata could not be fetched, parsed, or names another issuer."""


class AuthorizationServerUnavailable(TokenClientError):
    """The token endpoint could not be reached or answered with a server error: retry later (a 503 upstream)."""


class TokenRequestError(TokenClientError):
    """The authorization server refused a token request with an RFC 6749 5.2 error (a 502 upstream)."""

    def __init__(self, error: str, error_description: str | None = None, *, status: int) -> None:
        self.error = error
        self.error_description = error_description
        self.status = status
        detail = f": {error_description}" if error_description else ""
        super().__init__(f"token request refused ({status} {error}){detail}")
