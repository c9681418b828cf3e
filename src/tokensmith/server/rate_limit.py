"""Throttling failed logins per username and per client address, in a sliding time window.

The windows live in this process's memory: with several workers or replicas each keeps its own count, so the
effective limit is the configured one times the number of processes. That still turns online password guessing
from thousands of tries a second into a handful a minute.
"""

from __future__ import annotations

import time
from collections import OrderedDict, deque
from collections.abc import Callable

from tokensmith.config.server import LoginSettings


class SlidingWindow:
    """Counts events per key over the last ``window`` seconds; forgets the least recent keys beyond ``max_keys``."""

    def __init__(
        self, limit: int, window: float, *, clock: Callable[[], float] = time.monotonic, max_keys: int = 10_000
    ) -> None:
        self._limit = limit
        self._window = window
        self._clock = clock
        self._max_keys = max_keys
        self._events: OrderedDict[str, deque[float]] = OrderedDict()

    def _recent(self, key: str) -> deque[float] | None:
        events = self._events.get(key)
        if events is None:
            return None
        horizon = self._clock() - self._window
        while events and events[0] <= horizon:
            events.popleft()
        if not events:
            del self._events[key]
            return None
        return events

    def exceeded(self, key: str) -> bool:
        events = self._recent(key)
        return events is not None and len(events) >= self._limit

    def add(self, key: str) -> None:
        events = self._recent(key)
        if events is None:
            events = deque()
            self._events[key] = events
        events.append(self._clock())
        self._events.move_to_end(key)
        while len(self._events) > self._max_keys:
            self._events.popitem(last=False)

    def clear(self, key: str) -> None:
        self._events.pop(key, None)

    def forgive_one(self, key: str) -> None:
        """Take back the most recent event of ``key`` (an attempt counted in advance that turned out fine)."""
        events = self._events.get(key)
        if events:
            events.pop()
            if not events:
                del self._events[key]


class LoginThrottle:
    def __init__(self, settings: LoginSettings, *, clock: Callable[[], float] = time.monotonic) -> None:
        window = settings.failure_window.total_seconds()
        self._per_user = SlidingWindow(settings.max_failures_per_user, window, clock=clock)
        self._per_address = SlidingWindow(settings.max_failures_per_address, window, clock=clock)

    def blocked(self, username: str, address: str) -> bool:
        return self._per_user.exceeded(username.casefold()) or self._per_address.exceeded(address)

    def failed(self, username: str, address: str) -> None:
        self._per_user.add(username.casefold())
        self._per_address.add(address)

    def attempt(self, username: str, address: str) -> bool:
        """Admit a login attempt, counting it as a failure until :meth:`succeeded` says otherwise; False when
        throttled. Counting before the (slow, off-loop) password check is what makes the limit hold for
        guesses sent in parallel: checking first and counting after would let a whole burst through."""
        if self.blocked(username, address):
            return False
        self.failed(username, address)
        return True

    def succeeded(self, username: str, address: str | None = None) -> None:
        """A correct password: forget the user's failures, and take back the attempt counted for ``address``."""
        self._per_user.clear(username.casefold())
        if address is not None:
            self._per_address.forgive_one(address)
