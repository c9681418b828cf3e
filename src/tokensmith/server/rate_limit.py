"""Throttling failed logins per username and per client address, counted in the database.

Every process and replica counts against the same limits (behind a load balancer, a per-process count would let
through the configured number of guesses times the number of processes). The count is a sliding window
approximated by two fixed ones, as rate limiters commonly do: the attempts of the current window plus those of
the previous window, weighted by the share of it that still lies within one window length of now. So a burst at
the end of one window is not forgotten at its boundary, and no list of timestamps is kept.

An attempt is counted before the password is checked (the check is slow and runs off the event loop, so guesses
sent in parallel would otherwise all pass the "blocked?" test first), and a successful login takes it back: the
user's failures are forgotten and the address's attempt is uncounted.

What is counted is stored as a SHA-256 digest, never as text: people type their password into the username field.
"""

from __future__ import annotations

import hashlib
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta

from tokensmith.config.server import LoginSettings
from tokensmith.server.clock import Clock, utc_now
from tokensmith.store.base import Store
from tokensmith.store.records import LoginAttempt, LoginCounter

_EPOCH = datetime(1970, 1, 1, tzinfo=UTC)


def counter_hash(kind: str, value: str) -> str:
    """The digest a counter is stored under: ``kind`` ("user", "address") keeps a username and an address that
    happen to be the same text apart."""
    return hashlib.sha256(f"{kind}\0{value}".encode()).hexdigest()


@dataclass(frozen=True, slots=True)
class AdmittedLogin:
    """A login attempt the throttle let through (and counted): hand it back to :meth:`LoginThrottle.succeeded`."""

    user_counter: str
    address_counter: str
    window_start: datetime


class LoginThrottle:
    def __init__(self, store: Store, settings: LoginSettings, *, clock: Clock = utc_now) -> None:
        self._store = store
        self._window = settings.failure_window
        self._per_user = settings.max_failures_per_user
        self._per_address = settings.max_failures_per_address
        self._clock = clock

    async def attempt(self, username: str, address: str) -> AdmittedLogin | None:
        """Admit a login attempt, counting it as a failure until :meth:`succeeded` says otherwise; None when the
        username (case-insensitively) or the address has used up its attempts."""
        now = self._clock()
        window_start = _window_start(now, self._window)
        elapsed = (now - window_start) / self._window
        user = counter_hash("user", username.casefold())
        address_counter = counter_hash("address", address)
        attempt = LoginAttempt(
            counters=(LoginCounter(user, self._per_user), LoginCounter(address_counter, self._per_address)),
            window_start=window_start,
            previous_window_start=window_start - self._window,
            previous_weight=1.0 - elapsed,
            expires_at=window_start + 2 * self._window,
        )
        if not await self._store.admit_login_attempt(attempt):
            return None
        return AdmittedLogin(user, address_counter, window_start)

    async def succeeded(self, login: AdmittedLogin) -> None:
        """A correct password: forget the user's failures, and take back the attempt counted for the address."""
        await self._store.forget_login_attempts(login.user_counter)
        await self._store.take_back_login_attempt(login.address_counter, login.window_start)


def _window_start(now: datetime, window: timedelta) -> datetime:
    """The start of the fixed window holding ``now``: windows are aligned on the Unix epoch, so every replica
    (with synchronized clocks) puts an attempt in the same window."""
    return _EPOCH + window * ((now - _EPOCH) // window)
