"""Failed-login throttling: refusals per (username, address) and per address, and a per-username back-off delay
that never refuses, so an attacker cannot lock the owner out; all counted in the database (SQLite and PostgreSQL)."""

from __future__ import annotations

import asyncio
import hashlib
from datetime import timedelta

from sqlalchemy import select
from tests.support.records import NOW, SetClock

from tokensmith.config.server import LoginSettings
from tokensmith.server.core.rate_limit import LoginThrottle, counter_hash
from tokensmith.store.sql import SqlStore
from tokensmith.store.tables import login_attempts

WINDOW = timedelta(minutes=5)
# The counters' digest key, as a key-encryption key derives it: the same for every throttle of a test (replicas).
SECRET = b"k" * 32
# Where SetClock starts, and the start of a window (windows are aligned on the Unix epoch): tests step from here.
START = NOW


class Sleeps:
    """Records the back-off waits instead of waiting."""

    def __init__(self) -> None:
        self.waits: list[float] = []

    async def __call__(self, seconds: float) -> None:
        self.waits.append(seconds)


def throttle(
    store: SqlStore,
    clock: SetClock,
    *,
    per_user: int = 100,
    per_address: int = 100,
    max_backoff: timedelta = timedelta(seconds=8),
    sleeps: Sleeps | None = None,
) -> LoginThrottle:
    settings = LoginSettings(
        max_failures_per_user_and_address=per_user,
        max_failures_per_address=per_address,
        failure_window=WINDOW,
        max_backoff=max_backoff,
    )
    return LoginThrottle(store, settings, secret=SECRET, clock=clock, sleep=sleeps or Sleeps())


async def test_per_user_and_address_case_insensitively_and_per_address(store: SqlStore) -> None:
    clock = SetClock()
    limits = throttle(store, clock, per_user=2, per_address=3)
    assert await limits.attempt("Alice", "10.0.0.1")
    assert await limits.attempt("alice", "10.0.0.1")
    assert await limits.attempt("ALICE", "10.0.0.1") is None  # per username and address, whatever the case
    assert await limits.attempt("alice", "10.0.0.2")  # the owner, elsewhere, is not locked out
    assert await limits.attempt("bob", "10.0.0.1")
    assert await limits.attempt("carol", "10.0.0.1") is None  # per address: three attempts already
    assert await limits.attempt("carol", "10.0.0.3")


async def test_an_attacker_elsewhere_delays_the_owner_but_never_locks_them_out(store: SqlStore) -> None:
    clock = SetClock()
    sleeps = Sleeps()
    limits = throttle(store, clock, per_user=5, per_address=20, max_backoff=timedelta(seconds=8), sleeps=sleeps)
    admitted = [await limits.attempt("alice", "203.0.113.7") for _ in range(20)]
    assert sum(login is not None for login in admitted) == 5  # the attacker's address is stopped...
    assert sleeps.waits == [0.25, 0.5, 1.0, 2.0]  # ...after waiting longer before each guess
    owner = await limits.attempt("alice", "192.0.2.1")
    assert owner is not None  # the owner gets in from their own address...
    assert sleeps.waits[-1] == 4.0  # ...after a wait bounded by max-backoff
    for _ in range(10):
        await limits.attempt("alice", f"198.51.100.{len(sleeps.waits)}")
    assert max(sleeps.waits) == 8.0  # more addresses: the wait grows to its cap, never to a refusal
    await limits.succeeded(owner)
    before = len(sleeps.waits)
    assert await limits.attempt("alice", "192.0.2.1")
    assert len(sleeps.waits) == before  # a success forgives the username's delay


async def test_failures_fade_with_the_sliding_window(store: SqlStore) -> None:
    clock = SetClock()
    sleeps = Sleeps()
    limits = throttle(store, clock, sleeps=sleeps)
    for _ in range(3):
        assert await limits.attempt("alice", "10.0.0.1")
    assert sleeps.waits == [0.25, 0.5]
    clock.now = START + WINDOW * 1.5  # half of the previous window still counts: 1.5 recent failures
    assert await limits.attempt("alice", "10.0.0.1")
    assert sleeps.waits == [0.25, 0.5, 0.25]
    clock.now = START + WINDOW * 3  # two windows on: forgotten
    assert await limits.attempt("alice", "10.0.0.1")
    assert sleeps.waits == [0.25, 0.5, 0.25]


async def test_a_refused_attempt_counts_for_nothing(store: SqlStore) -> None:
    clock = SetClock()
    limits = throttle(store, clock, per_user=1, per_address=2)
    assert await limits.attempt("alice", "10.0.0.1")
    for _ in range(3):  # alice is blocked: these must not use up the address's attempts
        assert await limits.attempt("alice", "10.0.0.1") is None
    assert await limits.attempt("bob", "10.0.0.1")


async def test_success_forgives_the_user_and_takes_back_the_address_attempt(store: SqlStore) -> None:
    clock = SetClock()
    limits = throttle(store, clock, per_user=2, per_address=3)
    first = await limits.attempt("alice", "10.0.0.1")
    second = await limits.attempt("alice", "10.0.0.1")
    assert first is not None
    assert second is not None
    assert await limits.attempt("alice", "10.0.0.1") is None  # two attempts in flight fill alice's window here
    await limits.succeeded(second)  # one of them was the right password
    assert await limits.attempt("alice", "10.0.0.1")  # alice's failures from this address are forgiven
    assert await limits.attempt("bob", "10.0.0.1")  # the address counts two attempts again, not three...
    assert await limits.attempt("carol", "10.0.0.1") is None  # ...so one more fills it


async def test_the_window_slides_across_its_boundary(store: SqlStore) -> None:
    clock = SetClock()
    limits = throttle(store, clock, per_user=2)
    clock.now = START + WINDOW * 0.9
    assert await limits.attempt("alice", "10.0.0.1")
    assert await limits.attempt("alice", "10.0.0.1")
    # Just past the boundary, 90 % of the previous window still counts: 2 x 0.9 + 1 > 2.
    clock.now = START + WINDOW * 1.1
    assert await limits.attempt("alice", "10.0.0.1") is None
    # Later in the new window only 40 % of it does: 2 x 0.4 + 1 <= 2.
    clock.now = START + WINDOW * 1.6
    assert await limits.attempt("alice", "10.0.0.1")
    # Two windows on, the burst is forgotten.
    clock.now = START + WINDOW * 3
    assert await limits.attempt("alice", "10.0.0.1")
    assert await limits.attempt("alice", "10.0.0.1")


async def test_attempts_made_at_once_are_admitted_no_more_than_the_limit(store: SqlStore) -> None:
    clock = SetClock()
    limits = throttle(store, clock, per_user=3)
    admitted = await asyncio.gather(*(limits.attempt("alice", "10.0.0.1") for n in range(20)))
    assert sum(login is not None for login in admitted) == 3


async def test_replicas_on_one_database_share_the_counts(store: SqlStore, store_url: str) -> None:
    clock = SetClock()
    replica = SqlStore(store_url)
    try:
        here, there = throttle(store, clock, per_user=3), throttle(replica, clock, per_user=3)
        assert await here.attempt("alice", "10.0.0.1")
        assert await there.attempt("alice", "10.0.0.1")
        assert await here.attempt("alice", "10.0.0.1")
        assert await there.attempt("alice", "10.0.0.1") is None
    finally:
        await replica.close()


async def test_replicas_on_one_database_share_the_delay_and_its_forgiveness(store: SqlStore, store_url: str) -> None:
    clock = SetClock()
    replica = SqlStore(store_url)
    try:
        here_sleeps, there_sleeps = Sleeps(), Sleeps()
        here, there = throttle(store, clock, sleeps=here_sleeps), throttle(replica, clock, sleeps=there_sleeps)
        for address in ("203.0.113.1", "203.0.113.2", "203.0.113.3"):
            assert await here.attempt("alice", address)
        assert here_sleeps.waits == [0.25, 0.5]
        owner = await there.attempt("Alice", "192.0.2.1")  # the other replica, whatever the case
        assert owner is not None
        assert there_sleeps.waits == [1.0]  # the failures counted there delay the attempt here
        await there.succeeded(owner)
        assert await here.attempt("alice", "203.0.113.1")
        assert here_sleeps.waits == [0.25, 0.5]  # and the owner's success forgives them there too
    finally:
        await replica.close()


async def test_only_digests_are_stored_and_purged_two_windows_on(store: SqlStore) -> None:
    clock = SetClock()
    limits = throttle(store, clock)
    assert await limits.attempt("hunter2-typed-as-a-username", "10.0.0.1")
    async with store.engine.connect() as connection:
        stored = set((await connection.execute(select(login_attempts.c.counter_hash))).scalars())
    typed = "hunter2-typed-as-a-username"
    assert stored == {
        counter_hash(SECRET, "user-address", typed + "\x00" + "10.0.0.1"),
        counter_hash(SECRET, "address", "10.0.0.1"),
        counter_hash(SECRET, "user", typed),
    }
    # Keyed: without the key, a dictionary of what people type finds nothing in the table.
    assert hashlib.sha256(f"user\0{typed}".encode()).hexdigest() not in stored
    assert counter_hash(b"another key" * 3, "user", typed) not in stored
    assert await store.purge_expired(START + WINDOW * 2 - timedelta(seconds=1)) == 0
    assert await store.purge_expired(START + WINDOW * 2) == 3
