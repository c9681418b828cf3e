"""Prometheus metrics of the server (each app gets its own registry, so tests can build many apps).

With several server processes (``tokensmith serve --workers N``) a scrape reaches whichever process the kernel hands
the connection to, so each process counting for itself would show a different, partial count on every scrape, and
Prometheus would read each drop as a counter reset. There ``tokensmith serve`` points every process at one
directory (:data:`MULTIPROCESS_DIR_ENV`, prometheus-client's multiprocess mode): each process keeps its counts in a
file of its own there, and ``/metrics`` answers the sum over all of them, so any process answers for the host.
"""

from __future__ import annotations

import os
import shutil
import tempfile
from collections.abc import Iterator
from contextlib import contextmanager
from typing import Any, Final

from prometheus_client import CollectorRegistry, Counter, generate_latest
from prometheus_client.exposition import CONTENT_TYPE_LATEST
from prometheus_client.multiprocess import MultiProcessCollector

__all__ = ["CONTENT_TYPE_LATEST", "MULTIPROCESS_DIR_ENV", "ServerMetrics", "shared_metrics_directory"]

# prometheus-client's own variable: set when the process starts, before prometheus_client is imported.
MULTIPROCESS_DIR_ENV: Final = "PROMETHEUS_MULTIPROC_DIR"

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
        directory = os.environ.get(MULTIPROCESS_DIR_ENV)
        if not directory:
            return generate_latest(self.registry)
        # Every process's counts, summed (the live ones' and those of processes that died: a counter never drops).
        registry = CollectorRegistry()
        MultiProcessCollector(registry, path=directory)  # type: ignore[no-untyped-call]  # untyped upstream
        return generate_latest(registry)


@contextmanager
def shared_metrics_directory() -> Iterator[str]:
    """One metrics directory for the server processes started inside the block (they inherit the environment),
    removed when it ends. A directory the environment already names (a deployment's own) is used as it is and left
    in place: prometheus-client's rule is that it be emptied before the processes start."""
    given = os.environ.get(MULTIPROCESS_DIR_ENV)
    if given:
        yield given
        return
    directory = tempfile.mkdtemp(prefix="tokensmith-metrics-")
    os.environ[MULTIPROCESS_DIR_ENV] = directory
    try:
        yield directory
    finally:
        os.environ.pop(MULTIPROCESS_DIR_ENV, None)
        shutil.rmtree(directory, ignore_errors=True)
