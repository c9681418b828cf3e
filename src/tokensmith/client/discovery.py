"""Authorization server metadata: OpenID Connect Discovery 1.0 and RFC 8414, with a small cache.

Both locations are tried (OpenID first, as Spring does); the document must name exactly the configured issuer,
otherwise it is refused (a mix-up defence required by both specifications).
"""

from __future__ import annotations

import threading
import time
from collections.abc import Callable, Mapping
from typing import Any
from urllib.parse import urlsplit, urlunsplit

import httpx

from tokensmith.client.errors import AuthorizationServerUnavailable, DiscoveryError
from tokensmith.client.flow import Flow, run_async

Clock = Callable[[], float]
Metadata = Mapping[str, Any]


def metadata_urls(issuer: str) -> tuple[str, str]:
    """The OpenID location (issuer + path) and the RFC 8414 3.1 location (well-known path inserted before the path)."""
    parts = urlsplit(issuer)
    path = parts.path.rstrip("/")
    openid = urlunsplit((parts.scheme, parts.netloc, f"{path}/.well-known/openid-configuration", "", ""))
    oauth = urlunsplit((parts.scheme, parts.netloc, f"/.well-known/oauth-authorization-server{path}", "", ""))
    return openid, oauth


def discovery_flow(issuer: str) -> Flow[Metadata]:
    """Fetch the issuer's metadata, trying both well-known locations."""
    problems: list[str] = []
    unavailable = True
    for url in metadata_urls(issuer):
        response = yield httpx.Request("GET", url, headers={"Accept": "application/json"})
        unavailable = unavailable and response.status_code >= 500
        if response.status_code != 200:
            problems.append(f"{url} answered {response.status_code}")
            continue
        try:
            document = response.json()
        except ValueError:
            problems.append(f"{url} did not return JSON")
            continue
        if not isinstance(document, dict):
            problems.append(f"{url} did not return a JSON object")
            continue
        if document.get("issuer") != issuer:
            raise DiscoveryError(f"{url} names issuer {document.get('issuer')!r}, expected exactly {issuer!r}")
        return document
    if unavailable:  # both locations failed with server errors: an outage, not a misconfiguration
        raise AuthorizationServerUnavailable(f"metadata of {issuer!r} unavailable: {'; '.join(problems)}")
    raise DiscoveryError(f"no authorization server metadata for {issuer!r}: {'; '.join(problems)}")


def endpoint(metadata: Metadata, name: str, issuer: str) -> str:
    value = metadata.get(name)
    if not isinstance(value, str) or not value.startswith(("https://", "http://")):
        raise DiscoveryError(f"metadata of {issuer!r} has no usable {name!r}")
    return value


class MetadataCache:
    """Issuer metadata kept for ``ttl`` seconds (a token endpoint rarely moves; discovery per request is waste)."""

    def __init__(self, *, ttl: float = 3600.0, clock: Clock = time.time) -> None:
        self._ttl = ttl
        self._clock = clock
        self._entries: dict[str, tuple[float, Metadata]] = {}
        self._lock = threading.Lock()

    def get(self, issuer: str) -> Metadata | None:
        with self._lock:
            entry = self._entries.get(issuer)
        if entry is None or self._clock() - entry[0] > self._ttl:
            return None
        return entry[1]

    def put(self, issuer: str, metadata: Metadata) -> None:
        with self._lock:
            self._entries[issuer] = (self._clock(), metadata)

    def flow(self, issuer: str) -> Flow[Metadata]:
        """The cached metadata, or a discovery whose result is cached."""
        cached = self.get(issuer)
        if cached is not None:
            return cached
        metadata = yield from discovery_flow(issuer)
        self.put(issuer, metadata)
        return metadata


async def discover(issuer: str, http: httpx.AsyncClient) -> Metadata:
    """Fetch ``issuer``'s metadata once (no cache)."""
    return await run_async(discovery_flow(issuer), http)
