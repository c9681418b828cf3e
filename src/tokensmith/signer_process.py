"""RSA signatures made in a helper process, so that one server process keeps a second core busy.

An RS256 signature costs ~250 µs of CPU, about half of an RS256 token exchange. Made on the event loop, it caps one
server process at one core. Made on a thread, it runs in parallel (OpenSSL releases the GIL), but every signature
then passes the GIL between the thread and the event loop twice, and on a busy host the thread holding the GIL is
sometimes preempted while the loop waits for it. Up to the twelfth round of docs/performance.md tokensmith used
such a thread; this module replaced it. A child process has its own interpreter and GIL: the event loop writes a
frame to a pipe and reads the signature back when it is ready, as it reads a socket. Measured served (RS256, one
process, paired alternating rounds of 1.5 s against the thread): exchanges 1.13x a second, p99 0.88x and CPU per
exchange 0.925x over 14 rounds (1.15-1.19x, 0.81-0.89x and 0.85-0.93x for a prototype in two more A/Bs).

The signer process (:mod:`tokensmith.signer_child`) is spawned by the first signature and serves one event loop.
It gets each private key once, over the pipe (never on its command line), and signs in order, so replies are
matched to callers first in, first out. The server keeps each job's key and input until its reply is in: if the
signer dies or misbehaves, the server makes those signatures itself, logs it, and spawns a new signer after
:data:`_RESPAWN_AFTER`; meanwhile it signs on the event loop. No caller waits forever and none gets an error the
signer caused.

When :data:`_MAX_WAITING` signatures already wait for the signer (more connections than one core signs for), the
event loop signs the next one itself.

ECDSA stays on the event loop: its ~40 µs signature is cheaper than a round trip. A signer only pays while a core
is free for it: with as many busy server processes as cores it only adds a hand-over. Hence
:func:`auto_signer_process`.
"""

from __future__ import annotations

import asyncio
import collections
import contextlib
import logging
import math
import os
import subprocess
import sys
import time
from pathlib import Path
from typing import Final

from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric import rsa

from tokensmith.signer_child import (
    FORGET_KEYS,
    LOAD_KEY,
    MAX_PAYLOAD,
    REPLY,
    REQUEST,
    SIGN,
    SIGNED,
    sign_rs256,
)

logger = logging.getLogger(__name__)

# Signatures waiting for the signer from which the event loop signs the next one itself (about 16 ms of RSA-2048
# work). Measured served (RS256, one process, 32 connections, against the thread): the loop signing once 7-12
# waited gave 0.97-1.12x the exchanges a second and 0.89-1.16x the p99, never signing (at 32 connections) 1.10-1.18x
# and 0.81-0.90x; against 64, 16 cost 11 % of the exchanges, and 24 raised p99 by 5-12 % (client credentials, where
# the signer is the bottleneck, gained 10 % and 25 %). The overflow is for many more connections.
_MAX_WAITING: Final = 64
# After the signer died, signatures are made on the event loop for this long before a new signer is spawned.
_RESPAWN_AFTER: Final = 10.0
# How long close() waits for the signer to exit after its pipe closed, before killing it.
_EXIT_WAIT: Final = 5.0
# Keys the signer holds at most; beyond that it forgets them all and is sent the ones still in use (rotation adds
# a key every so often; this keeps a long-running server's signer from holding every key it ever had).
_MAX_KEYS: Final = 16
_READ_SIZE: Final = 1 << 16


class _Job:
    __slots__ = ("future", "key", "signing_input")

    def __init__(self, future: asyncio.Future[bytes], key: rsa.RSAPrivateKey, signing_input: bytes) -> None:
        self.future = future
        self.key = key
        self.signing_input = signing_input


class _Signer:
    """One running signer process, its two pipe ends and the jobs it has not answered yet."""

    def __init__(
        self, loop: asyncio.AbstractEventLoop, process: subprocess.Popen[bytes], to_child: int, from_child: int
    ):
        self.loop = loop
        self.process = process
        self.to_child = to_child
        self.from_child = from_child
        self.jobs: collections.deque[_Job] = collections.deque()
        self.outbox = bytearray()
        self.replies = bytearray()
        # id(key) -> (the key, kept alive so the id stays its own, and its number in the signer)
        self.key_numbers: dict[int, tuple[rsa.RSAPrivateKey, int]] = {}
        self.next_key_number = 1
        # False once stopped: its file descriptors are closed (and their numbers may already be reused).
        self.alive = True


# The signer's program, run by this interpreter with the two pipe ends' descriptors as its last arguments.
_PROGRAM: Final = ("-m", "tokensmith.signer_child")


def _spawn() -> tuple[subprocess.Popen[bytes], int, int]:
    """Start a signer process: it, the pipe end to write its frames to, the one to read its replies from."""
    child_reads, to_child = os.pipe()
    from_child, child_writes = os.pipe()
    try:
        process = subprocess.Popen(
            [sys.executable, *_PROGRAM, str(child_reads), str(child_writes)],
            pass_fds=(child_reads, child_writes),
            stdin=subprocess.DEVNULL,
            stdout=subprocess.DEVNULL,
        )
    except BaseException:
        for fd in (child_reads, to_child, from_child, child_writes):
            os.close(fd)
        raise
    os.close(child_reads)
    os.close(child_writes)
    os.set_blocking(to_child, False)
    os.set_blocking(from_child, False)
    return process, to_child, from_child


class SignerProcess:
    """RS256 signatures made by a signer process (``enabled``), or on the caller's thread (not enabled: tests,
    the CLI, embedded use, and servers with as many processes as cores)."""

    def __init__(self, enabled: bool) -> None:
        self._enabled = enabled
        self._closed = False
        self._signer: _Signer | None = None
        self._respawn_at = 0.0

    @property
    def running(self) -> bool:
        """Whether a signer process is running now."""
        return self._signer is not None

    @property
    def pid(self) -> int | None:
        """The running signer process's PID."""
        return None if self._signer is None else self._signer.process.pid

    async def sign_rs256(self, private_key: rsa.RSAPrivateKey, signing_input: bytes) -> bytes:
        """The RS256 signature of ``signing_input``, made by the signer process when there is one for this event
        loop and it is keeping up, else here. Errors of the signature itself are raised here, as if made here."""
        signer = self._signer_for(asyncio.get_running_loop()) if self._enabled and not self._closed else None
        if signer is None or len(signer.jobs) >= _MAX_WAITING or len(signing_input) > MAX_PAYLOAD:
            return sign_rs256(private_key, signing_input)
        future: asyncio.Future[bytes] = signer.loop.create_future()
        signer.jobs.append(_Job(future, private_key, signing_input))
        number = self._key_number(signer, private_key)
        self._send(signer, REQUEST.pack(SIGN, number, len(signing_input)) + signing_input)
        return await future

    def close(self) -> None:
        """Stop the signer process (it exits once its pipe is closed); later signatures are made by the caller."""
        self._closed = True
        signer, self._signer = self._signer, None
        if signer is None:
            return
        self._stop(signer)
        try:
            signer.process.wait(_EXIT_WAIT)
        except subprocess.TimeoutExpired:
            signer.process.kill()
            signer.process.wait()
        self._sign_here(signer)

    def _signer_for(self, loop: asyncio.AbstractEventLoop) -> _Signer | None:
        signer = self._signer
        if signer is not None:
            return signer if signer.loop is loop else None  # one loop per signer: others sign for themselves
        if time.monotonic() < self._respawn_at:
            return None
        try:
            process, to_child, from_child = _spawn()
        except Exception as exc:  # OSError, or no usable sys.executable (an embedding interpreter): never fatal
            logger.error("could not start the signer process (%r); signing on the event loop", exc)
            self._respawn_at = time.monotonic() + _RESPAWN_AFTER
            return None
        signer = self._signer = _Signer(loop, process, to_child, from_child)
        loop.add_reader(from_child, self._on_replies, signer)
        return signer

    def _key_number(self, signer: _Signer, key: rsa.RSAPrivateKey) -> int:
        known = signer.key_numbers.get(id(key))
        if known is not None:
            return known[1]
        if len(signer.key_numbers) >= _MAX_KEYS:
            self._send(signer, REQUEST.pack(FORGET_KEYS, 0, 0))
            signer.key_numbers.clear()
        number = signer.next_key_number
        signer.next_key_number += 1
        signer.key_numbers[id(key)] = (key, number)
        der = key.private_bytes(
            serialization.Encoding.DER, serialization.PrivateFormat.PKCS8, serialization.NoEncryption()
        )
        self._send(signer, REQUEST.pack(LOAD_KEY, number, len(der)) + der)
        return number

    def _send(self, signer: _Signer, frame: bytes) -> None:
        if not signer.alive:  # lost while this job was being queued: the job was signed here already
            return
        if signer.outbox:  # the pipe was full: keep the order
            signer.outbox += frame
            return
        try:
            written = os.write(signer.to_child, frame)
        except BlockingIOError:
            written = 0
        except OSError as exc:
            self._lost(signer, f"writing to it failed ({exc})")
            return
        if written < len(frame):
            signer.outbox += frame[written:]
            signer.loop.add_writer(signer.to_child, self._on_writable, signer)

    def _on_writable(self, signer: _Signer) -> None:
        try:
            written = os.write(signer.to_child, signer.outbox)
        except BlockingIOError:
            return
        except OSError as exc:
            self._lost(signer, f"writing to it failed ({exc})")
            return
        del signer.outbox[:written]
        if not signer.outbox:
            signer.loop.remove_writer(signer.to_child)

    def _on_replies(self, signer: _Signer) -> None:
        try:
            chunk = os.read(signer.from_child, _READ_SIZE)
        except BlockingIOError:
            return
        except OSError as exc:
            self._lost(signer, f"reading from it failed ({exc})")
            return
        if not chunk:
            self._lost(signer, f"it exited with status {signer.process.poll()}")
            return
        replies = signer.replies
        replies += chunk
        offset = 0
        while len(replies) - offset >= REPLY.size:
            status, size = REPLY.unpack_from(replies, offset)
            end = offset + REPLY.size + size
            if end > len(replies):
                break
            if not signer.jobs:
                self._lost(signer, "it answered more than it was asked")
                return
            job = signer.jobs.popleft()
            if status == SIGNED:
                if not job.future.done():  # else its caller was cancelled meanwhile
                    job.future.set_result(bytes(replies[offset + REPLY.size : end]))
            else:  # it could not sign: sign here, which raises the real error if there is one
                _settle_here(job)
            offset = end
        del replies[:offset]

    def _lost(self, signer: _Signer, reason: str) -> None:
        """The signer is gone or unusable: stop it, sign what it still owed here, spawn another later."""
        logger.error("the signer process %d failed: %s; signing on the event loop", signer.process.pid, reason)
        if self._signer is signer:
            self._signer = None
            self._respawn_at = time.monotonic() + _RESPAWN_AFTER
        self._stop(signer)
        with contextlib.suppress(ProcessLookupError):
            signer.process.kill()
        with contextlib.suppress(subprocess.TimeoutExpired):
            signer.process.wait(_EXIT_WAIT)
        self._sign_here(signer)

    @staticmethod
    def _stop(signer: _Signer) -> None:
        """Detach the pipes from the event loop and close them: the signer reads its end of input and exits."""
        if not signer.alive:
            return
        signer.alive = False
        if not signer.loop.is_closed():
            signer.loop.remove_reader(signer.from_child)
            signer.loop.remove_writer(signer.to_child)
        for fd in (signer.to_child, signer.from_child):
            with contextlib.suppress(OSError):
                os.close(fd)

    @staticmethod
    def _sign_here(signer: _Signer) -> None:
        """Make the signatures a stopped signer still owed."""
        while signer.jobs:
            _settle_here(signer.jobs.popleft())


def _settle_here(job: _Job) -> None:
    if job.future.done():  # its caller was cancelled meanwhile
        return
    try:
        job.future.set_result(sign_rs256(job.key, job.signing_input))
    except Exception as exc:
        job.future.set_exception(exc)


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


def auto_signer_process(processes: int, cpus: int | None = None) -> bool:
    """Whether each server process gets a signer process when the configuration leaves it open: while the
    server's processes leave a CPU free; not when they fill every CPU (then a signer only adds hand-overs)."""
    return processes < (usable_cpus() if cpus is None else cpus)


__all__ = ["SignerProcess", "auto_signer_process", "usable_cpus"]
