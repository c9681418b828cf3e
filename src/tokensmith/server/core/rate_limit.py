"""Slowing down password guessing without letting anyone lock a user out.

Two limits refuse attempts (HTTP 429), counted in the database so that every process and replica counts against
the same numbers: failures for one username *from one client address*, and failures from one address whatever the
username. Neither can be used against the owner of an account: an attacker's failures from address A use up only
A's attempts, and the owner signs in from B.

Per username there is a delay instead of a refusal: each recent failure for the username doubles the wait before
the next attempt's password check (:data:`FIRST_BACKOFF`, then twice that...), up to ``login.max-backoff``. An
attacker guessing one account from one address waits longer and longer until the per-address limits stop them; the
owner, with the right password, gets in after at most ``max-backoff``. The delay is counted by each process (a
bounded table of the most recent usernames), so it is not shared between replicas; the limits are.

The database counts form a sliding window approximated by two fixed ones, as rate limiters commonly do: the
attempts of the current window plus those of the previous window, weighted by the share of it that still lies
within one window length of now. So a burst at the end of one window is not forgotten at its boundary, and no list
of timestamps is kept.

An attempt is counted before the password is checked (the check is slow and runs off the event loop, so guesses
sent in parallel would otherwise all pass the "blocked?" test first), and a successful login takes it back: the
failures of the username from that address and its delay are forgotten, and the address's attempt is uncounted.

What is counted is stored as a SHA-256 digest, never as text: people type their password into the username field.
"""

from __future__ import annotations

import asyncio
import hashlib
from collections.abc import Awaitable, Callable
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from typing import Final

from tokensmith.config.server import LoginSettings
from tokensmith.server.clock import Clock, utc_now
from tokensmith.store.base import Store
from tokensmith.store.records import LoginAttempt, LoginCounter

_EPOCH = datetime(1970, 1, 1, tzinfo=UTC)
# The wait after a username's first recent failure; each further failure doubles it, up to `max-backoff`.
FIRST_BACKOFF: Final = timedelta(milliseconds=250)
# How many usernames' recent failures a process remembers (the least recently failed are forgotten first).
MAX_TRACKED_USERNAMES: Final = 10_000


def counter_hash(kind: str, value: str) -> str:
    """The digest a counter is stored under: ``kind`` ("user-address", "address") keeps values of different kinds
    that happen to be the same text apart."""
    return hashlib.sha256(f"{kind}\0{value}".encode()).hexdigest()


@dataclass(frozen=True, slots=True)
class AdmittedLogin:
    """A login attempt the throttle let through (and counted): hand it back to :meth:`LoginThrottle.succeeded`."""

    user_address_counter: str
    address_counter: str
    username: str  # case-folded
    window_start: datetime


@dataclass(slots=True)
class _Failures:
    count: int
    last: datetime


class Backoff:
    """Recent failures per username in this process, and the wait they impose on the next attempt."""

    def __init__(self, *, window: timedelta, cap: timedelta, max_tracked: int = MAX_TRACKED_USERNAMES) -> None:
        self._window = window
        self._cap = cap
        self._max_tracked = max_tracked
        self._failures: dict[str, _Failures] = {}  # in order of the latest failure, oldest first

    def count_failure(self, username: str, now: datetime) -> timedelta:
        """Count an attempt as a failure (until :meth:`forgive`) and return how long it waits first."""
        previous = self._failures.pop(username, None)
        recent = previous.count if previous is not None and now - previous.last < self._window else 0
        self._failures[username] = _Failures(recent + 1, now)
        self._forget_old(now)
        if recent == 0:
            return timedelta(0)
        return min(self._cap, FIRST_BACKOFF * (1 << min(recent - 1, 32)))

    def forgive(self, username: str) -> None:
        self._failures.pop(username, None)

    def _forget_old(self, now: datetime) -> None:
        while self._failures:
            oldest = next(iter(self._failures))
            if len(self._failures) <= self._max_tracked and now - self._failures[oldest].last < self._window:
                break
            del self._failures[oldest]


class LoginThrottle:
    def __init__(
        self,
        store: Store,
        settings: LoginSettings,
        *,
        clock: Clock = utc_now,
        sleep: Callable[[float], Awaitable[None]] = asyncio.sleep,
    ) -> None:
        self._store = store
        self._window = settings.failure_window
        self._per_user_and_address = settings.max_failures_per_user_and_address
        self._per_address = settings.max_failures_per_address
        self._backoff = Backoff(window=settings.failure_window, cap=settings.max_backoff)
        self._clock = clock
        self._sleep = sleep

    async def attempt(self, username: str, address: str) -> AdmittedLogin | None:
        """Admit a login attempt, counting it as a failure until :meth:`succeeded` says otherwise, after the
        username's back-off delay; None when the username (case-insensitively) from this address, or the address,
        has used up its attempts."""
        now = self._clock()
        window_start = _window_start(now, self._window)
        elapsed = (now - window_start) / self._window
        user = username.casefold()
        user_address = counter_hash("user-address", f"{user}\0{address}")
        address_counter = counter_hash("address", address)
        attempt = LoginAttempt(
            counters=(
                LoginCounter(user_address, self._per_user_and_address),
                LoginCounter(address_counter, self._per_address),
            ),
            window_start=window_start,
            previous_window_start=window_start - self._window,
            previous_weight=1.0 - elapsed,
            expires_at=window_start + 2 * self._window,
        )
        if not await self._store.admit_login_attempt(attempt):
            return None
        delay = self._backoff.count_failure(user, now)
        if delay > timedelta(0):
            await self._sleep(delay.total_seconds())
        return AdmittedLogin(user_address, address_counter, user, window_start)

    async def succeeded(self, login: AdmittedLogin) -> None:
        """A correct password: forget the username's failures (from that address, and its delay), and take back the
        attempt counted for the address."""
        self._backoff.forgive(login.username)
        await self._store.forget_login_attempts(login.user_address_counter)
        await self._store.take_back_login_attempt(login.address_counter, login.window_start)


def _window_start(now: datetime, window: timedelta) -> datetime:
    """The start of the fixed window holding ``now``: windows are aligned on the Unix epoch, so every replica
    (with synchronized clocks) puts an attempt in the same window."""
    return _EPOCH + window * ((now - _EPOCH) // window)
