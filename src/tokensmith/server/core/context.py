"""What the protocol core works with: configuration, storage, keys, the clock and the token issuer."""

from __future__ import annotations

from dataclasses import dataclass
from typing import TYPE_CHECKING

from tokensmith.config.server import ServerConfig
from tokensmith.server.clock import Clock
from tokensmith.server.core.tokens import TokenIssuer
from tokensmith.server.keys import KeyManager
from tokensmith.store.base import Store

if TYPE_CHECKING:
    from tokensmith.server.core.client_assertion import ClientAssertionVerifier
    from tokensmith.server.core.grants.token_exchange import ExchangeRuntime


@dataclass(slots=True)
class ServerContext:
    config: ServerConfig
    store: Store
    keys: KeyManager
    tokens: TokenIssuer
    clock: Clock
    # The token-exchange grant's per-server state (trusted issuers' key caches, audit buffer), created on first
    # use; `close_exchange_runtime(ctx)` flushes and closes it when the server stops.
    exchange: ExchangeRuntime | None = None
    # private_key_jwt client authentication (clients' key caches), created on first use;
    # `close_client_assertion_verifier(ctx)` closes it when the server stops.
    client_assertions: ClientAssertionVerifier | None = None

    @property
    def issuer(self) -> str:
        return self.config.issuer
