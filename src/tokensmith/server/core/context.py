"""What the protocol core works with: configuration, storage, keys, the clock, the token issuer, and the per-server
objects of the features registered when the server was assembled (``core/wiring.py``): the grants and the
``private_key_jwt`` verifier. Everything is set when the context is built; nothing is created on first use.

The grant protocol lives here too, since a grant and the context name each other: the context holds the grants,
and a grant is called with the context.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from typing import Any, Protocol

from tokensmith.config.server import ServerConfig
from tokensmith.server.clock import Clock
from tokensmith.server.core.client_assertion import ClientAssertionVerifier
from tokensmith.server.core.dpop import DPoPVerifier
from tokensmith.server.core.grants.base import AuthenticatedClient, TokenRequest, TokenResponse
from tokensmith.server.core.metadata import server_metadata
from tokensmith.server.core.tokens import TokenIssuer
from tokensmith.server.keys import KeyManager
from tokensmith.store.base import Store


class GrantHandler(Protocol):
    """One grant type of the token endpoint: a parsed token request from an authenticated client in, a token
    response out (or an OAuthError). A grant may subclass this protocol for the defaults of the last two methods."""

    grant_type: str

    async def __call__(
        self, request: TokenRequest, client: AuthenticatedClient, ctx: ServerContext
    ) -> TokenResponse: ...

    def metadata(self, config: ServerConfig) -> Mapping[str, Any]:
        """The fields this grant adds to the discovery documents (RFC 8414 2); none by default."""
        return {}

    async def aclose(self) -> None:
        """Release what the grant holds (key caches, connections) when the server stops; nothing by default."""
        return None


def grant_registry(grants: Iterable[GrantHandler]) -> dict[str, GrantHandler]:
    """The grants by ``grant_type``, in the order given; a grant type registered twice is a wiring mistake."""
    registry: dict[str, GrantHandler] = {}
    for grant in grants:
        if grant.grant_type in registry:
            raise ValueError(f"grant type {grant.grant_type!r} is registered twice")
        registry[grant.grant_type] = grant
    return registry


@dataclass(frozen=True, slots=True)
class ServerContext:
    config: ServerConfig
    store: Store
    keys: KeyManager
    tokens: TokenIssuer
    clock: Clock
    # private_key_jwt client authentication (the clients' key caches).
    client_assertions: ClientAssertionVerifier
    # The token endpoint's grants by grant_type: the token endpoint dispatches on them, discovery lists them.
    grants: Mapping[str, GrantHandler]
    # DPoP proofs of token requests (RFC 9449): checks, replay cache, nonces.
    dpop: DPoPVerifier

    @property
    def issuer(self) -> str:
        return self.config.issuer

    def metadata(self) -> dict[str, Any]:
        """The discovery documents' fields for this server: its configuration and what it registered."""
        return server_metadata(
            self.config,
            grant_types=self.grants.keys(),
            contributors=(*self.grants.values(), self.client_assertions, self.dpop),
        )

    async def aclose(self) -> None:
        """Close what the registered features hold (call once, when the server stops); the store is the caller's."""
        for grant in self.grants.values():
            await grant.aclose()
        await self.client_assertions.aclose()
