"""Prometheus metrics of one server process (each app gets its own registry, so tests can build many apps)."""

from __future__ import annotations

from prometheus_client import CollectorRegistry, Counter, generate_latest
from prometheus_client.exposition import CONTENT_TYPE_LATEST

__all__ = ["CONTENT_TYPE_LATEST", "ServerMetrics"]


class ServerMetrics:
    def __init__(self) -> None:
        self.registry = CollectorRegistry()
        self.token_requests = Counter(
            "tokensmith_token_requests",
            "Token endpoint requests by grant type and outcome (issued or the OAuth error code).",
            ["grant_type", "outcome"],
            registry=self.registry,
        )
        self.logins = Counter(
            "tokensmith_logins",
            "Login attempts by outcome (success, failure, throttled).",
            ["outcome"],
            registry=self.registry,
        )
        self.authorizations = Counter(
            "tokensmith_authorizations",
            "Authorization requests by outcome (code, login, or the OAuth error code).",
            ["outcome"],
            registry=self.registry,
        )

    def render(self) -> bytes:
        return generate_latest(self.registry)
