"""Slowing down password guessing without letting anyone lock a user out.

Two limits refuse attempts (HTTP 429), counted in the database so that every process and replica counts against
the same numbers: failures for one username *from one client address*, and failures from one address whatever the
username. Neither can be used against the owner of an account: an attacker's failures from address A use up only
A's attempts, and the owner signs in from B.

Per username there is a delay instead of a refusal: each recent failure for the username, from any address,
doubles the wait before the next attempt's password check (:data:`FIRST_BACKOFF`, then twice that...), up to
``login.max-backoff``. An attacker guessing one account waits longer and longer until the per-address limits stop
them; the owner, with the right password, gets in after at most ``max-backoff``. The username's failures are a third
counter in the same table, one that never refuses, so every process and replica imposes the same delay.

The database counts form a sliding window approximated by two fixed ones, as rate limiters commonly do: the
attempts of the current window plus those of the previous window, weighted by the share of it that still lies
within one window length of now. So a burst at the end of one window is not forgotten at its boundary, and no list
of timestamps is kept.

An attempt is counted before the password is checked (the check is slow and runs off the event loop, so guesses
sent in parallel would otherwise all pass the "blocked?" test first), and a successful login takes it back: the
failures of the username (from that address, and for its delay) are forgotten, and the address's attempt is
uncounted.

What is counted is stored as an HMAC-SHA256 under a key derived from the key-encryption key, never as text: people
type their password into the username field, and a plain digest of a common password is a dictionary lookup away
for anyone who can read the table. Every replica holding the key-encryption key derives the same key, so they count
alike.
"""

from __future__ import annotations

import asyncio
import hashlib
import hmac
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


# What a key-encryption key derives the counters' digest key for (server/key_encryption.py).
COUNTER_SECRET_PURPOSE: Final = "login-counters"


def counter_hash(secret: bytes, kind: str, value: str) -> str:
    """The digest a counter is stored under, keyed by ``secret``: ``kind`` ("user-address", "address", "user")
    keeps values of different kinds that happen to be the same text apart."""
    return hmac.new(secret, f"{kind}\0{value}".encode(), hashlib.sha256).hexdigest()


@dataclass(frozen=True, slots=True)
class AdmittedLogin:
    """A login attempt the throttle let through (and counted): hand it back to :meth:`LoginThrottle.succeeded`."""

    user_address_counter: str
    address_counter: str
    user_counter: str
    window_start: datetime


def backoff(failures: float, cap: timedelta) -> timedelta:
    """The wait before a password check after ``failures`` recent failures for the username (from the sliding
    window, so possibly fractional): none for the first attempt, then :data:`FIRST_BACKOFF` doubling, up to
    ``cap``."""
    recent = int(failures)
    if recent < 1:
        return timedelta(0)
    return min(cap, FIRST_BACKOFF * (1 << min(recent - 1, 32)))


class LoginThrottle:
    def __init__(
        self,
        store: Store,
        settings: LoginSettings,
        *,
        secret: bytes,
        clock: Clock = utc_now,
        sleep: Callable[[float], Awaitable[None]] = asyncio.sleep,
    ) -> None:
        self._store = store
        self._secret = secret  # the counters' digest key (COUNTER_SECRET_PURPOSE)
        self._window = settings.failure_window
        self._per_user_and_address = settings.max_failures_per_user_and_address
        self._per_address = settings.max_failures_per_address
        self._max_backoff = settings.max_backoff
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
        user_address = counter_hash(self._secret, "user-address", f"{user}\0{address}")
        address_counter = counter_hash(self._secret, "address", address)
        user_counter = counter_hash(self._secret, "user", user)
        attempt = LoginAttempt(
            counters=(
                LoginCounter(user_address, self._per_user_and_address),
                LoginCounter(address_counter, self._per_address),
                LoginCounter(user_counter, None),
            ),
            window_start=window_start,
            previous_window_start=window_start - self._window,
            previous_weight=1.0 - elapsed,
            expires_at=window_start + 2 * self._window,
        )
        counts = await self._store.admit_login_attempt(attempt)
        if counts is None:
            return None
        delay = backoff(counts[user_counter] - 1, self._max_backoff)  # the failures before this attempt
        if delay > timedelta(0):
            await self._sleep(delay.total_seconds())
        return AdmittedLogin(user_address, address_counter, user_counter, window_start)

    async def succeeded(self, login: AdmittedLogin) -> None:
        """A correct password: forget the username's failures (from that address, and for its delay), and take back
        the attempt counted for the address."""
        await self._store.forget_login_attempts((login.user_address_counter, login.user_counter))
        await self._store.take_back_login_attempt(login.address_counter, login.window_start)


def _window_start(now: datetime, window: timedelta) -> datetime:
    """The start of the fixed window holding ``now``: windows are aligned on the Unix epoch, so every replica
    (with synchronized clocks) puts an attempt in the same window."""
    return _EPOCH + window * ((now - _EPOCH) // window)
