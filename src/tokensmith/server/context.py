"""What the protocol core works with: configuration, storage, keys, the clock and the token issuer."""

from __future__ import annotations

from dataclasses import dataclass

from tokensmith.config.server import ServerConfig
from tokensmith.keys import Clock, KeyManager
from tokensmith.server.tokens import TokenIssuer
from tokensmith.store.base import Store


@dataclass(slots=True)
class ServerContext:
    config: ServerConfig
    store: Store
    keys: KeyManager
    tokens: TokenIssuer
    clock: Clock

    @property
    def issuer(self) -> str:
        return self.config.issuer
