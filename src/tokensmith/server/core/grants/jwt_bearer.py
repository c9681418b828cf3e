"""The JWT bearer grant (RFC 7523 2.1): ``grant_type=urn:ietf:params:oauth:grant-type:jwt-bearer`` with a signed
JWT in ``assertion``, presented by an authenticated client.

The grant checks what every assertion shares (the client may use the grant, the assertion is a signed JWT of
sane size) and hands the parsed assertion to the profile registered for its explicit type (the JWT ``typ``
header, RFC 8725 3.11), e.g. the Identity Assertion JWT Authorization Grant (``grants/id_jag_bearer.py``). An
assertion of a type no profile accepts is ``invalid_grant`` (RFC 7521 5.2).
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import Any, Protocol

from tokensmith import jose
from tokensmith.config.id_jag import JWT_BEARER
from tokensmith.config.server import ServerConfig
from tokensmith.errors import invalid_grant, unauthorized_client
from tokensmith.server.core.context import GrantHandler, ServerContext
from tokensmith.server.core.grants.base import AuthenticatedClient, TokenRequest, TokenResponse

# An assertion larger than this is refused before any parsing.
MAX_ASSERTION_BYTES = 16 * 1024


class AssertionProfile(Protocol):
    """One kind of JWT the grant accepts, chosen by the assertion's ``typ`` header."""

    # The media types (lower case, without "application/") this profile handles.
    types: tuple[str, ...]

    async def __call__(
        self, assertion: jose.CompactJWS, request: TokenRequest, client: AuthenticatedClient, ctx: ServerContext
    ) -> TokenResponse: ...

    def metadata(self, config: ServerConfig) -> Mapping[str, Any]:
        """What the profile adds to the discovery documents."""
        ...


def assertion_type(header: Mapping[str, Any]) -> str | None:
    """The ``typ`` header, lower case, without the optional "application/" prefix (RFC 7515 4.1.9)."""
    typ = header.get("typ")
    return typ.lower().removeprefix("application/") if isinstance(typ, str) else None


class JwtBearerGrant(GrantHandler):
    """``urn:ietf:params:oauth:grant-type:jwt-bearer`` at the token endpoint, dispatching on the assertion's
    ``typ`` to its profile."""

    grant_type = JWT_BEARER

    def __init__(self, profiles: Sequence[AssertionProfile]) -> None:
        self._profiles: dict[str, AssertionProfile] = {}
        for profile in profiles:
            for typ in profile.types:
                if typ in self._profiles:
                    raise ValueError(f"assertion type {typ!r} has two profiles")
                self._profiles[typ] = profile

    async def __call__(self, request: TokenRequest, client: AuthenticatedClient, ctx: ServerContext) -> TokenResponse:
        if JWT_BEARER not in client.config.registration.authorization_grant_types:
            raise unauthorized_client("this client is not registered for the jwt-bearer grant")
        if client.method == "none":
            # The assertion is a bearer credential: only a client that proves who it is may present one.
            raise unauthorized_client("the jwt-bearer grant needs a confidential client")
        assertion = request.require("assertion")
        if len(assertion) > MAX_ASSERTION_BYTES:
            raise invalid_grant(f"assertion is larger than {MAX_ASSERTION_BYTES} bytes")
        try:
            parsed = jose.parse(assertion)
        except jose.InvalidJWT as exc:
            raise invalid_grant(f"assertion {exc}") from None
        if parsed.alg.lower() == "none" or not parsed.signature:
            raise invalid_grant("assertion is not signed; unsigned JWTs are never accepted")
        typ = assertion_type(parsed.header)
        profile = self._profiles.get(typ) if typ is not None else None
        if profile is None:
            accepted = ", ".join(sorted(self._profiles)) or "none"
            raise invalid_grant(f"assertion of type {typ or '(no typ header)'!r} is not accepted; accepted: {accepted}")
        return await profile(parsed, request, client, ctx)

    def metadata(self, config: ServerConfig) -> dict[str, Any]:
        merged: dict[str, Any] = {}
        for profile in dict.fromkeys(self._profiles.values()):
            merged.update(profile.metadata(config))
        return merged


__all__ = ["MAX_ASSERTION_BYTES", "AssertionProfile", "JwtBearerGrant", "assertion_type"]
