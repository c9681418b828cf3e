"""A bounded (LRU) cache of issued tokens, keyed by who asked for what, fresh until shortly before expiry."""

from __future__ import annotations

import hashlib
import threading
import time
from collections import OrderedDict
from collections.abc import Callable

from tokensmith.client.client_auth import Form
from tokensmith.client.grant import IssuedToken

Clock = Callable[[], float]
CacheKey = tuple[str, tuple[tuple[str, tuple[str, ...]], ...]]
# Parameters whose values are credentials: the key holds their digest, not the token itself.
_SECRET_PARAMS = frozenset({"subject_token", "actor_token"})


def cache_key(registration_id: str, form: Form) -> CacheKey:
    """The registration plus every request parameter (tokens hashed), order-independent."""
    items = []
    for name in sorted(form):
        value = form[name]
        values = (value,) if isinstance(value, str) else tuple(sorted(value))
        if name in _SECRET_PARAMS:
            values = tuple(hashlib.sha256(v.encode("utf-8")).hexdigest() for v in values)
        items.append((name, values))
    return registration_id, tuple(items)


class TokenCache:
    """Tokens are served until ``refresh_skew`` seconds before expiry (Spring's default: 60 s).

    For a short-lived token the skew is capped at half its lifetime, so it is still reused for a while. A token
    without ``expires_in`` is reused for ``unknown_expiry_ttl`` seconds only: its real lifetime is unknown.
    """

    def __init__(
        self,
        *,
        max_entries: int = 1024,
        refresh_skew: float = 60.0,
        unknown_expiry_ttl: float = 10.0,
        clock: Clock = time.time,
    ) -> None:
        if max_entries < 1:
            raise ValueError("max_entries must be at least 1")
        self._max_entries = max_entries
        self._refresh_skew = refresh_skew
        self._unknown_expiry_ttl = unknown_expiry_ttl
        self._clock = clock
        self._entries: OrderedDict[CacheKey, tuple[float, IssuedToken]] = OrderedDict()
        self._lock = threading.Lock()  # sync clients may share the cache across threads

    def __len__(self) -> int:
        return len(self._entries)

    def get(self, key: CacheKey) -> IssuedToken | None:
        now = self._clock()
        with self._lock:
            entry = self._entries.get(key)
            if entry is None:
                return None
            if now >= entry[0]:
                del self._entries[key]
                return None
            self._entries.move_to_end(key)
            return entry[1]

    def put(self, key: CacheKey, token: IssuedToken) -> None:
        usable_until = self.usable_until(token)
        with self._lock:
            if usable_until <= self._clock():
                self._entries.pop(key, None)
                return
            self._entries[key] = (usable_until, token)
            self._entries.move_to_end(key)
            while len(self._entries) > self._max_entries:
                self._entries.popitem(last=False)

    def invalidate(self, key: CacheKey) -> None:
        with self._lock:
            self._entries.pop(key, None)

    def usable_until(self, token: IssuedToken) -> float:
        if token.expires_at is None:
            return token.obtained_at + self._unknown_expiry_ttl
        lifetime = token.expires_at - token.obtained_at
        return token.expires_at - min(self._refresh_skew, lifetime / 2)
