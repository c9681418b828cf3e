"""Start the services the benchmark measures, wait until they answer, watch their memory, stop them by PID.

Every service runs on 127.0.0.1 in its own session. Stopping sends SIGTERM to the service and to each of its
descendants by PID (uvicorn and node cluster workers), then SIGKILL to whatever is left after a grace period.
"""

from __future__ import annotations

import contextlib
import os
import signal
import socket
import subprocess
import threading
import time
from collections.abc import Mapping, Sequence
from pathlib import Path

import httpx

PAGE_SIZE = os.sysconf("SC_PAGE_SIZE")
CLOCK_TICKS = os.sysconf("SC_CLK_TCK")


def free_port() -> int:
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as sock:
        sock.bind(("127.0.0.1", 0))
        port: int = sock.getsockname()[1]
        return port


def _stat_fields(pid: str) -> list[str] | None:
    """The fields of /proc/<pid>/stat after the command name (the 3rd field of proc(5) first); None for a process
    that is gone."""
    try:
        stat = Path(f"/proc/{pid}/stat").read_text()
    except OSError:
        return None
    # The command name is in parentheses and may contain spaces: the fields after the last ')' are fixed.
    return stat[stat.rindex(")") + 2 :].split()


def descendants(pid: int) -> list[int]:
    """PIDs of every process below ``pid``, read from /proc (children first found, breadth first)."""
    children: dict[int, list[int]] = {}
    for entry in Path("/proc").iterdir():
        if not entry.name.isdigit():
            continue
        fields = _stat_fields(entry.name)
        if fields is not None:
            children.setdefault(int(fields[1]), []).append(int(entry.name))
    found: list[int] = []
    queue = [pid]
    while queue:
        for child in children.get(queue.pop(0), []):
            found.append(child)
            queue.append(child)
    return found


def tree_cpu_seconds(pid: int) -> float:
    """User plus system CPU time used so far by ``pid`` and all its descendants, every thread included (processes
    that are gone count 0)."""
    total = 0
    for member in [pid, *descendants(pid)]:
        fields = _stat_fields(str(member))
        if fields is not None:
            total += int(fields[11]) + int(fields[12])  # utime, stime (proc(5): fields 14 and 15)
    return total / CLOCK_TICKS


def tree_rss_bytes(pid: int) -> int:
    """Resident memory of ``pid`` and all its descendants (0 for processes that are gone)."""
    total = 0
    for member in [pid, *descendants(pid)]:
        try:
            resident_pages = int(Path(f"/proc/{member}/statm").read_text().split()[1])
        except (OSError, IndexError, ValueError):
            continue
        total += resident_pages * PAGE_SIZE
    return total


class Service:
    """One measured service: a command line that serves HTTP on ``port`` until it is stopped."""

    def __init__(
        self,
        name: str,
        command: Sequence[str],
        *,
        port: int,
        ready_path: str,
        log_path: Path,
        env: Mapping[str, str] | None = None,
        cwd: Path | None = None,
    ) -> None:
        self.name = name
        self.command = list(command)
        self.port = port
        self.ready_path = ready_path
        self.log_path = log_path
        self.env = dict(os.environ) | dict(env or {})
        self.cwd = cwd
        self.process: subprocess.Popen[bytes] | None = None
        self.peak_rss = 0

    @property
    def base_url(self) -> str:
        return f"http://127.0.0.1:{self.port}"

    @property
    def pid(self) -> int:
        if self.process is None:
            raise RuntimeError(f"{self.name} is not running")
        return self.process.pid

    def start(self) -> None:
        with self.log_path.open("wb") as log:
            self.process = subprocess.Popen(
                self.command,
                stdout=log,
                stderr=subprocess.STDOUT,
                stdin=subprocess.DEVNULL,
                env=self.env,
                cwd=self.cwd,
                start_new_session=True,
            )

    def wait_ready(self, timeout: float = 60.0) -> None:
        """Poll ``ready_path`` until it answers below 500; fail with the service's log when it dies or times out."""
        deadline = time.monotonic() + timeout
        with httpx.Client(timeout=2.0) as client:
            while time.monotonic() < deadline:
                if self.process is not None and self.process.poll() is not None:
                    raise RuntimeError(f"{self.name} exited with {self.process.returncode}:\n{self.log_tail()}")
                try:
                    if client.get(self.base_url + self.ready_path).status_code < 500:
                        return
                except httpx.TransportError:
                    pass
                time.sleep(0.1)
        raise RuntimeError(f"{self.name} did not answer on port {self.port} within {timeout:.0f} s:\n{self.log_tail()}")

    def log_tail(self, lines: int = 30) -> str:
        try:
            return "\n".join(self.log_path.read_text(errors="replace").splitlines()[-lines:])
        except OSError:
            return "(no log)"

    def sample_rss(self) -> int:
        rss = tree_rss_bytes(self.pid)
        self.peak_rss = max(self.peak_rss, rss)
        return rss

    def stop(self, grace: float = 5.0) -> None:
        if self.process is None or self.process.poll() is not None:
            return
        members = [self.process.pid, *descendants(self.process.pid)]
        for member in members:
            _signal(member, signal.SIGTERM)
        deadline = time.monotonic() + grace
        with contextlib.suppress(subprocess.TimeoutExpired):
            self.process.wait(timeout=grace)
        # Workers exit after their supervisor; give them the rest of the grace period, then kill the survivors.
        survivors = [member for member in members[1:] if _alive(member)]
        while survivors and time.monotonic() < deadline:
            time.sleep(0.05)
            survivors = [member for member in survivors if _alive(member)]
        for member in survivors:
            _signal(member, signal.SIGKILL)
        if self.process.poll() is None:
            self.process.kill()
        self.process.wait(timeout=grace)


def _alive(pid: int) -> bool:
    try:
        stat = Path(f"/proc/{pid}/stat").read_text()
    except OSError:
        return False
    return stat[stat.rindex(")") + 2] != "Z"  # a zombie has exited; its parent has not reaped it yet


def _signal(pid: int, sig: signal.Signals) -> None:
    with contextlib.suppress(ProcessLookupError):
        os.kill(pid, sig)


class RssSampler:
    """Samples the resident memory of services in a background thread while a load runs."""

    def __init__(self, services: Sequence[Service], interval: float = 0.2) -> None:
        self._services = list(services)
        self._interval = interval
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._run, daemon=True)

    def __enter__(self) -> RssSampler:
        self._thread.start()
        return self

    def __exit__(self, *exc_info: object) -> None:
        self._stop.set()
        self._thread.join()
        for service in self._services:
            service.sample_rss()

    def _run(self) -> None:
        while not self._stop.wait(self._interval):
            for service in self._services:
                service.sample_rss()
