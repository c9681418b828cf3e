"""Several server processes on one port, each with its own listening socket (``SO_REUSEPORT``).

uvicorn's ``--workers`` shares one listening socket between its processes, and uvloop (libuv) accepts every
pending connection at once when it wakes up. A burst of keep-alive connections (a client's connection pool, a
service mesh sidecar, a load generator) therefore often lands whole on one process while the others idle: in
`make bench`, two processes served 32 connections at one process's rate in about a third of the runs. With a
socket per process in one ``SO_REUSEPORT`` group, the kernel spreads new connections across the processes by a
hash of their addresses, whoever is awake. (Linux only lets sockets of the same user join a group.)

The supervisor here starts the processes, restarts one that dies while serving, and on SIGTERM or SIGINT asks
each to shut down gracefully (uvicorn's own handling), then waits for them. A process that exits within
``MIN_UPTIME_S`` of its start is a start-up failure (a bad setting, an unreachable database): the supervisor then
stops all of them and fails, instead of restarting it forever. The port stays reserved by a bound (not
listening) socket of the supervisor, so a restarted process gets the same port and nothing else takes it.
"""

from __future__ import annotations

import contextlib
import dataclasses
import logging
import multiprocessing
import os
import signal
import socket
import sys
import time
from dataclasses import dataclass
from multiprocessing.connection import wait
from multiprocessing.process import BaseProcess
from types import FrameType
from typing import Any

logger = logging.getLogger("tokensmith.server")

# A process that ends sooner than this after its start failed to start (see the module docstring).
MIN_UPTIME_S = 10.0
# How long a process may take to finish its requests and shut down before it is killed.
STOP_TIMEOUT_S = 30.0
_POLL_S = 0.2


@dataclass(frozen=True, slots=True)
class WorkerSpec:
    """What each process serves: an ASGI app by import string (``module:attribute``), as uvicorn takes it."""

    app: str
    host: str
    port: int
    factory: bool = False
    log_level: str = "info"
    access_log: bool = True
    http: Any = "auto"  # uvicorn's `http`: a name or a protocol class (pickled by reference)


class StartupFailed(RuntimeError):
    """A server process ended during its start-up."""


def reuse_port_socket(host: str, port: int) -> socket.socket:
    """A TCP socket bound to ``host:port`` in the port's ``SO_REUSEPORT`` group (not listening yet)."""
    family = socket.AF_INET6 if ":" in host else socket.AF_INET
    sock = socket.socket(family, socket.SOCK_STREAM)
    try:
        sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEPORT, 1)
        sock.bind((host, port))
    except BaseException:
        sock.close()
        raise
    return sock


def serve_processes(spec: WorkerSpec, processes: int, *, min_uptime_s: float = MIN_UPTIME_S) -> None:
    """Run ``processes`` server processes for ``spec`` until SIGTERM or SIGINT. Raises OSError when the address
    cannot be bound and :class:`StartupFailed` when a process ends within ``min_uptime_s`` of its start."""
    if processes < 1:
        raise ValueError("processes must be at least 1")
    # Bound first: an address in use is an error here, once, and a port of 0 becomes the one every process uses.
    reservation = reuse_port_socket(spec.host, spec.port)
    try:
        _Supervisor(dataclasses.replace(spec, port=reservation.getsockname()[1]), processes, min_uptime_s).run()
    finally:
        reservation.close()


class _Supervisor:
    def __init__(self, spec: WorkerSpec, processes: int, min_uptime_s: float) -> None:
        self._spec = spec
        self._count = processes
        self._min_uptime_s = min_uptime_s
        # spawn, not fork: a child starts from a clean interpreter (no copied event loop, threads or open database).
        self._context = multiprocessing.get_context("spawn")
        self._workers: list[tuple[BaseProcess, float]] = []
        self._stopping = False

    def run(self) -> None:
        previous = {sig: signal.signal(sig, self._request_stop) for sig in (signal.SIGTERM, signal.SIGINT)}
        try:
            self._workers = [self._start() for _ in range(self._count)]
            logger.info(
                "tokensmith serving on http://%s:%d with %d processes (Press CTRL+C to quit)",
                self._spec.host,
                self._spec.port,
                self._count,
            )
            while not self._stopping:
                ended = wait([process.sentinel for process, _ in self._workers], timeout=_POLL_S)
                if ended and not self._stopping:
                    self._replace_ended()
        finally:
            self._stop_all()
            for sig, handler in previous.items():
                signal.signal(sig, handler)

    def _request_stop(self, signum: int, frame: FrameType | None) -> None:
        self._stopping = True

    def _start(self) -> tuple[BaseProcess, float]:
        process = self._context.Process(target=_serve_one, args=(self._spec,), name="tokensmith-worker", daemon=False)
        process.start()
        return process, time.monotonic()

    def _replace_ended(self) -> None:
        for index, (process, started) in enumerate(self._workers):
            if process.is_alive():
                continue
            process.join()
            if time.monotonic() - started < self._min_uptime_s:
                raise StartupFailed(f"a server process exited with code {process.exitcode} during start-up")
            logger.warning("server process %s exited with code %s; starting another", process.pid, process.exitcode)
            self._workers[index] = self._start()

    def _stop_all(self) -> None:
        for process, _ in self._workers:
            if process.is_alive() and process.pid is not None:
                with contextlib.suppress(ProcessLookupError):  # it ended meanwhile
                    os.kill(process.pid, signal.SIGTERM)
        deadline = time.monotonic() + STOP_TIMEOUT_S
        for process, _ in self._workers:
            process.join(max(0.0, deadline - time.monotonic()))
            if process.is_alive():
                logger.warning("server process %s did not stop in %.0f s; killing it", process.pid, STOP_TIMEOUT_S)
                process.kill()
                process.join()


def _serve_one(spec: WorkerSpec) -> None:
    """One server process: its own socket in the port's group, then uvicorn until SIGTERM/SIGINT."""
    import uvicorn

    sock = reuse_port_socket(spec.host, spec.port)
    config = uvicorn.Config(
        spec.app,
        factory=spec.factory,
        host=spec.host,
        port=spec.port,
        log_level=spec.log_level,
        access_log=spec.access_log,
        http=spec.http,
        lifespan="on",
    )
    server = uvicorn.Server(config)
    server.run(sockets=[sock])
    if not server.started:
        sys.exit(3)  # the app's start-up failed: the supervisor reports it


__all__ = ["MIN_UPTIME_S", "StartupFailed", "WorkerSpec", "reuse_port_socket", "serve_processes"]
