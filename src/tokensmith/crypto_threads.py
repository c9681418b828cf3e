"""Signature operations on a dedicated thread, so that one server process can keep a second core busy.

OpenSSL's ECDSA and RSA operations run without the GIL (``cryptography`` releases it around them), so a
signature made or checked on another thread runs in parallel with the event loop's Python work. A token
exchange spends ~100 µs of its ~400 µs of CPU in ECDSA (one verify, one sign); an RS256 signature alone costs
~250 µs. Only that call moves to the thread: parsing, header and key checks, claims and JSON stay on the loop,
so the thread holds the GIL as briefly as possible.

The handover is lean on purpose. The loop side costs one future and one queue put. Each thread takes jobs from a
shared queue and, while more are waiting, keeps going, then hands a whole batch of results back to the loop with
one ``call_soon_threadsafe``: under load that is one wake-up for several results rather than one per result.
A batch is bounded, so no result waits behind more than a few signatures.

When the thread falls behind (:data:`_INLINE_BACKLOG` jobs already waiting), the event loop makes the signature
itself instead of queueing it. The loop is the best helper there is: it holds the GIL already, it releases the GIL
for the length of the signature, and in that time the crypto thread takes the GIL uncontended to hand its results
back. A second thread as the helper (woken by a backlog) cost more: each of its returns from OpenSSL needs the GIL
while the loop holds it, and every such hand-over wakes a thread on the other core. Measured served (RS256, one
process, two A/B runs of 7 and 8 alternating rounds, against two threads with a sleeping helper): exchanges 9 %
more a second in the median of each, p99 19.1 -> 17.5 and 21.0 -> 18.4 ms, client credentials 7-8 % more.

While the threads run, Python's GIL switch interval is :data:`_SWITCH_INTERVAL` (2 µs instead of 5 ms), see
there; :meth:`CryptoThreads.close` gives the old interval back.

With ``threads=0`` every call runs inline on the loop (what tests and embedded use get by default).

A thread only pays when a core is free for it: with as many busy server processes as cores, the handover is pure
overhead (measured ~15 % fewer RS256 exchanges per second with two processes on two cores). Hence
:func:`auto_thread_count`.
"""

from __future__ import annotations

import asyncio
import contextlib
import math
import os
import queue
import sys
import threading
from collections.abc import Callable
from pathlib import Path
from typing import Any, Final, TypeVar

T = TypeVar("T")

# Results handed back per wake-up of the loop, at most: bounds the wait of the first result of a batch.
_MAX_BATCH = 8

# Jobs already waiting from which the event loop signs for itself (about 1.5 ms of RSA-2048 signatures). Measured
# served (RS256, one process, one thread, alternating rounds): 6 and 8 did best, 6 slightly ahead on the exchange;
# 4 (the loop signing more often, its own work waiting) and 12 (the queue's wait back) gave fewer exchanges a second
# and a higher p99.
_INLINE_BACKLOG = 6

# sys.setswitchinterval while the crypto threads run. A thread back from OpenSSL needs the GIL to hand its result
# over and take its next job. CPython (3.11) asks the holder to let go only when a waiter's timed wait of one
# interval runs out; but the event loop (uvloop) releases the GIL and takes it back between its callbacks, and each
# release wakes the waiter early, which then starts a new wait of a whole interval. With the default 5 ms the
# thread therefore waits until the loop blocks or signs for itself. At 2 µs its wait runs out during the loop's
# next callback, and the loop hands the GIL over at its next check. Measured served (RS256, one process, paired
# alternating rounds of 1.5 s, against 5 ms): the exchange's p99 0.90x and 0.92x in the median of two A/Bs of this
# code (lower in 11 of 16 and 12 of 14 rounds), requests/s 1.01-1.03x; 1 to 10 µs set at start-up, in three more,
# 0.83-0.89x; 20 µs half that (and 20 µs to 100 ms, measured before, nothing). Process-wide, but only while the
# threads run: without them (ES256, or as many processes as CPUs) the event loop has no thread worth handing the
# GIL to, and 2 µs for the whole ES256 server cost it 7 % more CPU per exchange.
_SWITCH_INTERVAL: Final = 2e-6

_Job = tuple[asyncio.AbstractEventLoop, "asyncio.Future[Any]", Callable[..., Any], tuple[Any, ...]]
_Outcome = tuple["asyncio.Future[Any]", Any, BaseException | None]


class CryptoThreads:
    """Runs GIL-releasing calls (signing, verifying) on ``threads`` daemon threads; ``threads=0`` runs them inline.

    Threads start on the first call and stop at :meth:`close`. Jobs may come from several event loops (tests);
    each result goes back to the loop that asked for it.
    """

    def __init__(self, threads: int) -> None:
        if threads < 0:
            raise ValueError("threads must not be negative")
        self._count = threads
        self._jobs: queue.SimpleQueue[_Job | None] = queue.SimpleQueue()
        self._threads: list[threading.Thread] = []
        self._lock = threading.Lock()
        self._closed = False
        # The switch interval the threads replaced (set while they run), and theirs.
        self._previous_interval: float | None = None
        self._interval: float | None = None

    async def call(self, function: Callable[..., T], *args: Any) -> T:
        """``function(*args)``, on a crypto thread when there is one and it is keeping up, else inline.
        Exceptions propagate to the caller."""
        if self._count == 0 or self._closed or self._jobs.qsize() >= _INLINE_BACKLOG:
            return function(*args)
        if not self._threads:
            self._start()
        loop = asyncio.get_running_loop()
        future: asyncio.Future[T] = loop.create_future()
        self._jobs.put((loop, future, function, args))
        return await future

    def close(self) -> None:
        """Stop the threads once the jobs already queued are done; later calls run inline."""
        with self._lock:
            if self._closed:
                return
            self._closed = True
            threads, self._threads = self._threads, []
        for _ in threads:
            self._jobs.put(None)
        for thread in threads:
            thread.join()
        self._restore_switch_interval()

    def _start(self) -> None:
        with self._lock:
            if self._threads or self._closed:
                return
            self._shorten_switch_interval()
            for index in range(self._count):
                thread = threading.Thread(target=self._serve, name=f"tokensmith-crypto-{index}", daemon=True)
                thread.start()
                self._threads.append(thread)

    def _shorten_switch_interval(self) -> None:
        previous = sys.getswitchinterval()
        if previous <= _SWITCH_INTERVAL:  # already as short (set by the application): left alone
            return
        sys.setswitchinterval(_SWITCH_INTERVAL)
        # Read back: the interpreter keeps the interval in whole microseconds.
        self._previous_interval, self._interval = previous, sys.getswitchinterval()

    def _restore_switch_interval(self) -> None:
        previous, self._previous_interval = self._previous_interval, None
        # Only if it is still ours: whoever changed it since meant their value to stay.
        if previous is not None and sys.getswitchinterval() == self._interval:
            sys.setswitchinterval(previous)

    def _serve(self) -> None:
        jobs = self._jobs
        while True:
            job = jobs.get()
            if job is None:
                return
            batches: dict[asyncio.AbstractEventLoop, list[_Outcome]] = {}
            stop = False
            taken = 0
            while True:
                loop, future, function, args = job
                try:
                    outcome: _Outcome = (future, function(*args), None)
                except BaseException as exc:  # handed to the awaiting coroutine, which re-raises it
                    outcome = (future, None, exc)
                batches.setdefault(loop, []).append(outcome)
                taken += 1
                if taken >= _MAX_BATCH:
                    break
                try:
                    next_job = jobs.get_nowait()
                except queue.Empty:
                    break
                if next_job is None:
                    stop = True
                    break
                job = next_job
            for loop, outcomes in batches.items():
                # A closed loop raises RuntimeError: nobody awaits these results any more.
                with contextlib.suppress(RuntimeError):
                    loop.call_soon_threadsafe(_settle, outcomes)
            if stop:
                return


def usable_cpus(cgroup_cpu_max: Path = Path("/sys/fs/cgroup/cpu.max")) -> int:
    """CPUs this process may run on: its CPU affinity, capped by a cgroup v2 CPU quota (containers) if set."""
    count = len(os.sched_getaffinity(0)) if hasattr(os, "sched_getaffinity") else (os.cpu_count() or 1)
    try:
        quota, period = cgroup_cpu_max.read_text().split()[:2]
        if quota != "max":
            count = min(count, max(1, math.ceil(int(quota) / int(period))))
    except (OSError, ValueError):  # no cgroup v2 quota here
        pass
    return max(1, count)


# One: with the event loop signing for itself when the thread falls behind (see _INLINE_BACKLOG), a second thread
# only adds hand-overs of the GIL. Without that overflow, two threads had given client credentials 31 % more
# requests/s than one (RS256, one process on two CPUs); with it, one thread gives them about 7 % more than two did.
AUTO_THREADS: Final = 1


def auto_thread_count(processes: int, cpus: int | None = None) -> int:
    """Crypto threads per process when the configuration leaves it open: :data:`AUTO_THREADS` while the server's
    processes leave a CPU free, none when they fill every CPU (then a thread only adds handover cost)."""
    return AUTO_THREADS if processes < (usable_cpus() if cpus is None else cpus) else 0


def _settle(outcomes: list[_Outcome]) -> None:
    for future, result, error in outcomes:
        if future.done():  # cancelled while its job ran (the client went away)
            continue
        if error is None:
            future.set_result(result)
        else:
            future.set_exception(error)


__all__ = ["CryptoThreads", "auto_thread_count", "usable_cpus"]
