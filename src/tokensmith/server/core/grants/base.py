"""What every grant handler works on: the parsed token request, the authenticated client and the token response.

The handler protocol itself, ``GrantHandler``, is in ``core/context.py``."""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any
from urllib.parse import urlsplit

from tokensmith import jose
from tokensmith.config.server import ClientConfig
from tokensmith.errors import invalid_request, invalid_target

# RFC 8693 2.1 and RFC 8707 2: the only token-request parameters that may repeat.
REPEATABLE = frozenset({"audience", "resource"})
# How many audience and resource values one request may name: more is not a real use case, only a way to make
# the server work.
MAX_TARGETS = 16


def resource_indicators(values: Sequence[str]) -> tuple[str, ...]:
    """``resource`` values of a request (RFC 8707 2), duplicates dropped: each an absolute URI without a fragment,
    at most :data:`MAX_TARGETS`, else invalid_target."""
    resources = tuple(dict.fromkeys(value for value in values if value))
    if len(resources) > MAX_TARGETS:
        raise invalid_target(f"at most {MAX_TARGETS} resource values per request")
    for resource in resources:
        try:
            parts = urlsplit(resource)
        except ValueError:  # e.g. an unbalanced IPv6 bracket
            parts = urlsplit("")
        if not parts.scheme or not (parts.netloc or parts.path) or "#" in resource:
            raise invalid_target(f"resource {resource!r} must be an absolute URI without a fragment")
    return resources


def restricted_audience(resources: Sequence[str], allowed: tuple[str, ...]) -> tuple[str, ...]:
    """A token's ``aud`` (RFC 8707 2): ``allowed``, or the ``resources`` a request names, each one of them; any
    other is invalid_target."""
    if not resources:
        return allowed
    refused = [resource for resource in resources if resource not in allowed]
    if refused:
        raise invalid_target(f"this client may not obtain tokens for {', '.join(refused)}")
    return tuple(resources)


@dataclass(frozen=True, slots=True)
class TokenRequest:
    """The form parameters of a token request, each with every value it was sent with."""

    params: Mapping[str, Sequence[str]]
    # The request's DPoP proof (RFC 9449 5), checked before the grant runs; None when it sent none.
    dpop: jose.DPoPProof | None = None

    @property
    def dpop_jkt(self) -> str | None:
        """The thumbprint of the key the issued access token is bound to, or None (a bearer token)."""
        return self.dpop.jkt if self.dpop is not None else None

    def get(self, name: str) -> str | None:
        """The single value of ``name``, None when absent or empty; a repeated parameter is invalid_request."""
        values = self.params.get(name)
        if not values:
            return None
        if len(values) > 1 and name not in REPEATABLE:
            raise invalid_request(f"parameter {name!r} must not be sent more than once")
        return values[0] or None

    def require(self, name: str) -> str:
        value = self.get(name)
        if value is None:
            raise invalid_request(f"missing required parameter {name!r}")
        return value

    def get_all(self, name: str) -> list[str]:
        return [value for value in self.params.get(name, ()) if value]

    def resources(self) -> tuple[str, ...]:
        """The ``resource`` values: :func:`resource_indicators`."""
        return resource_indicators(self.get_all("resource"))

    def scopes(self) -> tuple[str, ...] | None:
        """The requested scope as a tuple (order kept, duplicates dropped), or None when not sent."""
        raw = self.get("scope")
        if raw is None:
            return None
        return tuple(dict.fromkeys(raw.split()))


@dataclass(frozen=True, slots=True)
class AuthenticatedClient:
    config: ClientConfig
    method: str  # "client_secret_basic" | "client_secret_post" | "private_key_jwt" | "none"

    @property
    def client_id(self) -> str:
        return self.config.registration.client_id


@dataclass(slots=True)
class TokenResponse:
    """``token_type`` is ``DPoP`` for a token bound to a DPoP key (RFC 9449 5), else ``Bearer``."""

    access_token: str
    expires_in: int
    token_type: str = "Bearer"
    scope: tuple[str, ...] | None = None
    refresh_token: str | None = None
    id_token: str | None = None
    issued_token_type: str | None = None
    extra: dict[str, Any] = field(default_factory=dict)

    def to_dict(self) -> dict[str, Any]:
        body: dict[str, Any] = {
            "access_token": self.access_token,
            "token_type": self.token_type,
            "expires_in": self.expires_in,
        }
        if self.issued_token_type is not None:
            body["issued_token_type"] = self.issued_token_type
        if self.scope is not None:
            body["scope"] = " ".join(self.scope)
        if self.refresh_token is not None:
            body["refresh_token"] = self.refresh_token
        if self.id_token is not None:
            body["id_token"] = self.id_token
        body.update(self.extra)
        return body
