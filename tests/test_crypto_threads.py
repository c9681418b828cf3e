"""CryptoThreads: results and errors reach the awaiting coroutine, batches, the event loop signing for itself when
the thread falls behind, cancellation, closing, the auto rule; and KeyManager hands RSA signatures (only) to them."""

from __future__ import annotations

import asyncio
import sys
import threading
from collections.abc import AsyncIterator, Callable
from pathlib import Path
from typing import Any, TypeVar

import pytest
from joserfc import jwt

from tokensmith.config.server import KeySettings
from tokensmith.crypto_threads import (
    _INLINE_BACKLOG,
    _SWITCH_INTERVAL,
    CryptoThreads,
    auto_thread_count,
    usable_cpus,
)
from tokensmith.keys import KeyManager, public_keyset
from tokensmith.store.sql import SqlStore

T = TypeVar("T")
CLAIMS = {"iss": "https://as.example", "sub": "alice", "aud": "message-service", "jti": "j-1"}


@pytest.fixture
def crypto() -> Any:
    threads = CryptoThreads(1)
    yield threads
    threads.close()


async def test_a_call_runs_on_a_crypto_thread_and_returns_its_result(crypto: CryptoThreads) -> None:
    caller = threading.get_ident()
    ident, doubled = await crypto.call(lambda x: (threading.get_ident(), 2 * x), 21)
    assert doubled == 42
    assert ident != caller
    assert threading.current_thread().name != "tokensmith-crypto-0"
    assert any(t.name == "tokensmith-crypto-0" for t in threading.enumerate())


async def test_zero_threads_run_the_call_inline() -> None:
    inline = CryptoThreads(0)
    assert await inline.call(threading.get_ident) == threading.get_ident()


async def test_an_exception_reaches_the_caller_and_the_thread_keeps_serving(crypto: CryptoThreads) -> None:
    def fail() -> None:
        raise ValueError("bad signature input")

    with pytest.raises(ValueError, match="bad signature input"):
        await crypto.call(fail)
    assert await crypto.call(str.upper, "still here") == "STILL HERE"


async def test_many_concurrent_calls_each_get_their_own_result(crypto: CryptoThreads) -> None:
    # More jobs than one batch hands back: every future must still be settled with its own value.
    results = await asyncio.gather(*(crypto.call(pow, n, 2) for n in range(200)))
    assert results == [n * n for n in range(200)]


class BlockedJob:
    """A job that signals when it starts and runs until released."""

    def __init__(self) -> None:
        self.started = threading.Event()
        self.release = threading.Event()

    def __call__(self) -> str:
        self.started.set()
        self.release.wait(5)
        return "late"


async def test_a_cancelled_caller_does_not_break_the_thread(crypto: CryptoThreads) -> None:
    job = BlockedJob()
    started, release = job.started, job.release
    task = asyncio.create_task(crypto.call(job))
    await asyncio.to_thread(started.wait, 5)
    task.cancel()
    with pytest.raises(asyncio.CancelledError):
        await task
    release.set()
    # The cancelled job's result is dropped; the next call is answered.
    assert await crypto.call(len, "abc") == 3


def test_a_result_for_a_closed_loop_is_dropped_and_the_thread_survives() -> None:
    crypto = CryptoThreads(1)
    job = BlockedJob()
    started, release = job.started, job.release
    first = asyncio.new_event_loop()
    task = first.create_task(crypto.call(job))
    first.run_until_complete(asyncio.sleep(0))  # the job is queued
    assert started.wait(5)
    task.cancel()
    first.run_until_complete(asyncio.gather(task, return_exceptions=True))
    first.close()
    release.set()  # the thread now hands its result to a closed loop
    try:
        assert asyncio.run(crypto.call(sum, [1, 2, 3])) == 6
    finally:
        crypto.close()


async def test_close_finishes_queued_jobs_stops_the_threads_and_later_calls_run_inline() -> None:
    crypto = CryptoThreads(2)
    assert await crypto.call(abs, -1) == 1
    workers = _threads_of(crypto)
    assert len(workers) == 2
    await asyncio.to_thread(crypto.close)
    assert not any(t.is_alive() for t in workers)
    assert await crypto.call(threading.get_ident) == threading.get_ident()
    crypto.close()  # closing twice is harmless


async def _queue_behind(crypto: CryptoThreads, blocked: BlockedJob, jobs: int) -> list[asyncio.Future[Any]]:
    """``jobs`` calls left waiting in the queue while the thread runs ``blocked``."""
    first = asyncio.ensure_future(crypto.call(blocked))
    assert await asyncio.to_thread(blocked.started.wait, 5)
    waiting = [asyncio.ensure_future(crypto.call(threading.get_ident)) for _ in range(jobs)]
    await asyncio.sleep(0)  # each call has run up to its queue put
    return [first, *waiting]


async def test_the_event_loop_signs_for_itself_when_the_thread_falls_behind(crypto: CryptoThreads) -> None:
    loop_thread = threading.get_ident()
    blocked = BlockedJob()
    queued = await _queue_behind(crypto, blocked, _INLINE_BACKLOG)
    try:
        # A backlog: this call does not wait behind it, the calling thread runs it at once.
        assert await asyncio.wait_for(crypto.call(threading.get_ident), 2) == loop_thread
    finally:
        blocked.release.set()
    first, *waiting = await asyncio.gather(*queued)
    assert first == "late"
    assert loop_thread not in waiting  # the jobs queued before it still ran on the crypto thread


async def test_a_call_below_the_backlog_is_queued_for_the_thread(crypto: CryptoThreads) -> None:
    loop_thread = threading.get_ident()
    blocked = BlockedJob()
    queued = await _queue_behind(crypto, blocked, _INLINE_BACKLOG - 1)
    last = asyncio.ensure_future(crypto.call(threading.get_ident))
    await asyncio.sleep(0.05)
    assert not last.done()  # waiting behind the blocked job, not run inline
    blocked.release.set()
    await asyncio.gather(*queued)
    assert await last != loop_thread


@pytest.mark.usefixtures("default_switch_interval")
async def test_the_threads_shorten_the_gil_switch_interval_while_they_run() -> None:
    crypto = CryptoThreads(1)
    assert sys.getswitchinterval() == 0.005  # nothing started yet
    await crypto.call(abs, -1)
    assert sys.getswitchinterval() == pytest.approx(_SWITCH_INTERVAL)
    assert _SWITCH_INTERVAL <= 10e-6  # longer, and the waiting thread is again starved by the loop's callbacks
    await asyncio.to_thread(crypto.close)
    assert sys.getswitchinterval() == 0.005


@pytest.mark.usefixtures("default_switch_interval")
async def test_inline_crypto_leaves_the_switch_interval_alone() -> None:
    inline = CryptoThreads(0)
    await inline.call(abs, -1)
    inline.close()
    assert sys.getswitchinterval() == 0.005


@pytest.mark.usefixtures("default_switch_interval")
async def test_an_interval_changed_while_the_threads_ran_is_kept_at_close() -> None:
    crypto = CryptoThreads(1)
    await crypto.call(abs, -1)
    sys.setswitchinterval(0.001)  # the application's own choice, made meanwhile
    await asyncio.to_thread(crypto.close)
    assert sys.getswitchinterval() == 0.001


@pytest.mark.usefixtures("default_switch_interval")
async def test_an_interval_already_shorter_is_left_as_the_application_set_it() -> None:
    sys.setswitchinterval(1e-6)
    crypto = CryptoThreads(1)
    await crypto.call(abs, -1)
    assert sys.getswitchinterval() == pytest.approx(1e-6)
    await asyncio.to_thread(crypto.close)
    assert sys.getswitchinterval() == pytest.approx(1e-6)


def test_negative_thread_counts_are_refused() -> None:
    with pytest.raises(ValueError, match="must not be negative"):
        CryptoThreads(-1)


# --- how many threads when the configuration leaves it open --------------------------------------------------


@pytest.mark.parametrize(
    ("processes", "cpus", "threads"), [(1, 2, 1), (1, 8, 1), (3, 4, 1), (2, 2, 0), (4, 2, 0), (1, 1, 0)]
)
def test_auto_gives_threads_only_while_processes_leave_a_cpu_free(processes: int, cpus: int, threads: int) -> None:
    assert auto_thread_count(processes, cpus) == threads


@pytest.mark.parametrize(
    ("cpu_max", "cap"),
    [("max 100000\n", None), ("150000 100000\n", 2), ("50000 100000\n", 1), ("100000 100000\n", 1), ("junk", None)],
)
def test_usable_cpus_honours_a_cgroup_quota(tmp_path: Path, cpu_max: str, cap: int | None) -> None:
    affinity = usable_cpus(tmp_path / "absent")
    cpu_max_file = tmp_path / "cpu.max"
    cpu_max_file.write_text(cpu_max)
    assert usable_cpus(cpu_max_file) == (affinity if cap is None else min(affinity, cap))


# --- KeyManager: which signatures go to the threads ----------------------------------------------------------


class CountingThreads(CryptoThreads):
    def __init__(self) -> None:
        super().__init__(1)
        self.calls = 0

    async def call(self, function: Callable[..., T], *args: Any) -> T:
        self.calls += 1
        return await super().call(function, *args)


@pytest.fixture
async def counted(tmp_path: Path) -> AsyncIterator[tuple[KeyManager, CountingThreads]]:
    store = SqlStore(f"sqlite+aiosqlite:///{tmp_path / 'keys.db'}")
    await store.initialize()
    threads = CountingThreads()
    try:
        manager = KeyManager(store, KeySettings(), crypto=threads)
        await manager.load()
        yield manager, threads
    finally:
        threads.close()
        await store.close()


async def test_rsa_signatures_are_made_on_the_threads_and_match_inline_signing(
    counted: tuple[KeyManager, CountingThreads],
) -> None:
    keys, threads = counted
    token = await keys.sign_async(CLAIMS, alg="RS256", typ="at+jwt")
    assert threads.calls == 1
    # RSASSA-PKCS1-v1_5 is deterministic: the same token as the inline path, which is joserfc's own output.
    assert token == keys.sign(CLAIMS, alg="RS256", typ="at+jwt")
    decoded = jwt.decode(token, public_keyset(keys.jwks()), algorithms=["RS256"])
    assert decoded.claims == CLAIMS
    assert decoded.header["typ"] == "at+jwt"


async def test_ecdsa_signatures_stay_on_the_event_loop(counted: tuple[KeyManager, CountingThreads]) -> None:
    keys, threads = counted
    token = await keys.sign_async(CLAIMS, alg="ES256")
    assert threads.calls == 0
    assert jwt.decode(token, public_keyset(keys.jwks()), algorithms=["ES256"]).claims == CLAIMS


async def test_many_rsa_signatures_at_once_all_verify(counted: tuple[KeyManager, CountingThreads]) -> None:
    keys, threads = counted
    claims = [dict(CLAIMS, jti=f"j-{n}") for n in range(20)]
    tokens = await asyncio.gather(*(keys.sign_async(c, alg="RS256") for c in claims))
    assert threads.calls == 20
    jwks = public_keyset(keys.jwks())
    assert [jwt.decode(t, jwks, algorithms=["RS256"]).claims["jti"] for t in tokens] == [c["jti"] for c in claims]


def _threads_of(crypto: CryptoThreads) -> list[threading.Thread]:
    return list(crypto._threads)
