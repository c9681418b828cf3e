"""Prometheus metrics of one server process (each app gets its own registry, so tests can build many apps)."""

from __future__ import annotations

from typing import Any

from prometheus_client import CollectorRegistry, Counter, generate_latest
from prometheus_client.exposition import CONTENT_TYPE_LATEST

__all__ = ["CONTENT_TYPE_LATEST", "ServerMetrics"]

# Grant types come from configuration-known handlers plus "unsupported"/"unknown", outcomes from the OAuth error
# codes: a few dozen pairs. The bound only guards the cache against a label we did not foresee.
_MAX_CACHED_CHILDREN = 256


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

        # labels() takes a lock and builds a key per call; the token endpoint counts every request, so the
        # children it uses (a handful of grant types times outcomes) are kept once made.
        self._token_request_children: dict[tuple[str, str], Any] = {}

    def count_token_request(self, grant_type: str, outcome: str) -> None:
        child = self._token_request_children.get((grant_type, outcome))
        if child is None:
            child = self.token_requests.labels(grant_type, outcome)
            if len(self._token_request_children) < _MAX_CACHED_CHILDREN:
                self._token_request_children[(grant_type, outcome)] = child
        child.inc()

    def render(self) -> bytes:
        return generate_latest(self.registry)
