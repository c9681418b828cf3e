"""Signature operations on dedicated threads, so that one server process can keep a second core busy.

OpenSSL's ECDSA and RSA operations run without the GIL (``cryptography`` releases it around them), so a
signature made or checked on another thread runs in parallel with the event loop's Python work. A token
exchange spends ~100 µs of its ~400 µs of CPU in ECDSA (one verify, one sign); an RS256 signature alone costs
~270 µs. Only that call moves to the thread: parsing, header and key checks, claims and JSON stay on the loop,
so the thread holds the GIL as briefly as possible.

The handover is lean on purpose. The loop side costs one future and one queue put. Each thread takes jobs from a
shared queue and, while more are waiting, keeps going, then hands a whole batch of results back to the loop with
one ``call_soon_threadsafe``: under load that is one wake-up for several results rather than one per result.
A batch is bounded, so no result waits behind more than a few signatures.

Only the first thread waits on the queue itself. The others are helpers: they sleep until a thread taking a job
finds a backlog (:data:`_HELP_BACKLOG` more waiting), then serve until the queue is empty, and sleep again. With
every thread waiting on the queue, each put woke one, and the threads took turns at jobs that one of them would have
run anyway: more wake-ups and GIL hand-overs, each costing the event loop's thread CPU. Measured served (RS256, one
process, three A/B runs of 19 alternating rounds in all): exchanges 2 817 -> 3 046 a second in the median (ahead in
15 rounds), client credentials 3 428 -> 3 718 (ahead in 15), the exchange's p99 20.2 -> 18.8 ms (lower in 14).

With ``threads=0`` the call runs inline on the loop (what tests and embedded use get by default).

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
import threading
from collections.abc import Callable
from pathlib import Path
from typing import Any, Final, TypeVar

T = TypeVar("T")

# Results handed back per wake-up of the loop, at most: bounds the wait of the first result of a batch.
_MAX_BATCH = 8

# Jobs left waiting when a thread takes one, from which it wakes a sleeping helper: about 3 ms of RSA-2048
# signatures. Measured served (RS256, one process, two threads, alternating rounds): 12, 18 and 24 did alike; at 4
# the helper woke almost as often as a thread that never sleeps, and gained nothing over it.
_HELP_BACKLOG = 12

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
        # Helpers (every thread but the first) sleep here while the queue is short (see _serve).
        self._help_wanted = threading.Semaphore(0)
        self._helpers_asleep = 0

    async def call(self, function: Callable[..., T], *args: Any) -> T:
        """``function(*args)``, on a crypto thread when there is one. Exceptions propagate to the caller."""
        if self._count == 0 or self._closed:
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
        for _ in threads:
            self._help_wanted.release()
        for thread in threads:
            thread.join()

    def _start(self) -> None:
        with self._lock:
            if self._threads or self._closed:
                return
            for index in range(self._count):
                thread = threading.Thread(
                    target=self._serve, args=(index > 0,), name=f"tokensmith-crypto-{index}", daemon=True
                )
                thread.start()
                self._threads.append(thread)

    def _serve(self, helper: bool) -> None:
        jobs = self._jobs
        while True:
            job = self._next_helper_job() if helper else jobs.get()
            if job is None:
                return
            batches: dict[asyncio.AbstractEventLoop, list[_Outcome]] = {}
            stop = False
            taken = 0
            while True:
                if self._helpers_asleep and jobs.qsize() >= _HELP_BACKLOG:
                    self._wake_helper()
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

    def _next_helper_job(self) -> _Job | None:
        """A helper's next job: one already waiting, else whatever is waiting once a thread that found a backlog
        wakes it. None: stop."""
        while True:
            try:
                return self._jobs.get_nowait()
            except queue.Empty:
                pass
            if self._closed:
                return None
            with self._lock:
                self._helpers_asleep += 1
            self._help_wanted.acquire()

    def _wake_helper(self) -> None:
        with self._lock:
            if self._helpers_asleep:
                self._helpers_asleep -= 1
                self._help_wanted.release()


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


# Two rather than one: a thread whose signature is done needs the GIL back to hand the result over, and the event
# loop holds it through its callbacks; while one thread waits for it, the other signs. One process on two CPUs,
# RS256, alternating runs: client credentials 6-66 % (31 % in the median) more requests/s than with one thread in
# each of ten rounds, the exchange within the machine's noise of it; three threads did no better than two.
AUTO_THREADS: Final = 2


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
