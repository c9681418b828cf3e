"""``tokensmith serve`` as a real subprocess on 127.0.0.1, for tests that kill, restart or measure the server.

``with serve_process(config_data, tmp_path) as server:`` writes the configuration (issuer = the server's own URL),
starts the server, waits for ``/healthz`` and stops it by PID at the end (SIGTERM, then SIGKILL). The server's
output goes to a file (``server.log_text()``).
"""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import time
from collections.abc import Iterator, Sequence
from contextlib import contextmanager
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import httpx
import yaml
from tests.support.server import free_port

STARTUP_TIMEOUT_SECONDS = 60.0


@dataclass
class ServeProcess:
    config_path: Path
    log_path: Path
    port: int
    extra_args: Sequence[str] = ()
    process: subprocess.Popen[bytes] | None = None
    _logs: list[Path] = field(default_factory=list)

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.port}"

    @property
    def pid(self) -> int:
        assert self.process is not None
        return self.process.pid

    def start(self) -> None:
        env = {k: v for k, v in os.environ.items() if not k.startswith("TOKENSMITH_")}
        command = [
            sys.executable,
            "-m",
            "tokensmith",
            "serve",
            "--config",
            str(self.config_path),
            "--port",
            str(self.port),
            *self.extra_args,
        ]
        with self.log_path.open("ab") as log:
            self.process = subprocess.Popen(command, stdout=log, stderr=log, env=env)
        self.wait_healthy()

    def wait_healthy(self, timeout: float = STARTUP_TIMEOUT_SECONDS) -> None:
        deadline = time.monotonic() + timeout
        while True:
            assert self.process is not None
            assert self.process.poll() is None, self.log_text()
            try:
                if httpx.get(self.url + "/healthz", timeout=2).status_code == 200:
                    return
            except httpx.TransportError:
                pass
            assert time.monotonic() < deadline, f"the server did not start within {timeout:.0f} s\n{self.log_text()}"
            time.sleep(0.1)

    def kill9(self) -> None:
        """SIGKILL: no shutdown, no flush; what was committed is all that survives."""
        assert self.process is not None
        os.kill(self.process.pid, signal.SIGKILL)
        self.process.wait(timeout=30)

    def stop(self) -> None:
        stop_process(self.process, grace=30)

    def rss_mb(self) -> float:
        """Resident memory of the server process, from /proc."""
        for line in Path(f"/proc/{self.pid}/status").read_text().splitlines():
            if line.startswith("VmRSS:"):
                return int(line.split()[1]) / 1024
        raise AssertionError("no VmRSS in /proc status")

    def log_text(self) -> str:
        try:
            return self.log_path.read_text(errors="replace")
        except OSError:
            return ""


def write_config(data: dict[str, Any], path: Path, port: int, issuer: str | None = None) -> Path:
    path.write_text(yaml.safe_dump({**data, "issuer": issuer or f"http://127.0.0.1:{port}"}))
    return path


@contextmanager
def serve_process(
    data: dict[str, Any],
    directory: Path,
    *,
    name: str = "server",
    extra_args: Sequence[str] = (),
    port: int = 0,
    issuer: str | None = None,
) -> Iterator[ServeProcess]:
    """A started server for ``data`` (a configuration as YAML would hold it), stopped at the end. Its issuer is its
    own URL unless ``issuer`` names another (replicas behind one name)."""
    port = port or free_port()
    config_path = write_config(data, directory / f"{name}.yaml", port, issuer)
    server = ServeProcess(config_path, directory / f"{name}.log", port, extra_args)
    try:
        server.start()
        yield server
    finally:
        server.stop()


def stop_process(process: subprocess.Popen[Any] | None, *, grace: float = 15) -> None:
    """SIGTERM, then SIGKILL if ``process`` has not exited ``grace`` seconds later; nothing if it already exited."""
    if process is None or process.poll() is not None:
        return
    process.terminate()
    try:
        process.wait(timeout=grace)
    except subprocess.TimeoutExpired:
        process.kill()
        process.wait(timeout=5)
