"""``tokensmith serve --config examples/authorization-server.yaml``, as a user runs it, on a free port.

The file is used as shipped. Only its documented environment overrides move it off port 9001 (other tests and
other checkouts may use that port): ``TOKENSMITH_PORT`` and ``TOKENSMITH_ISSUER=http://127.0.0.1:<port>``. It runs
in a scratch directory, so the file's ``database-url`` (``./tokensmith.db``) lands there.
"""

from __future__ import annotations

import os
import subprocess
import sys
import time
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

import httpx
from tests.interop.spring_apps import PortTaken
from tests.interop.tooling import REPO_ROOT, free_port
from tests.support.serve_process import stop_process

EXAMPLE_CONFIG = REPO_ROOT / "examples" / "authorization-server.yaml"
START_TIMEOUT_S = 30.0


class ExampleServer:
    """One ``python -m tokensmith serve`` process; its output goes to a log file quoted in failure messages."""

    def __init__(self, workdir: Path, port: int) -> None:
        self.port = port
        self.issuer = f"http://127.0.0.1:{port}"
        self.log_path = workdir / f"tokensmith-example-{port}.log"
        self._workdir = workdir
        self._process: subprocess.Popen[bytes] | None = None

    @property
    def environment(self) -> dict[str, str]:
        """The caller's environment without any TOKENSMITH_* setting, plus the two documented overrides."""
        inherited = {name: value for name, value in os.environ.items() if not name.startswith("TOKENSMITH_")}
        return {**inherited, "TOKENSMITH_PORT": str(self.port), "TOKENSMITH_ISSUER": self.issuer}

    def start(self) -> None:
        command = [
            sys.executable,
            "-m",
            "tokensmith",
            "serve",
            "--config",
            str(EXAMPLE_CONFIG),
            "--log-level",
            "warning",
        ]
        with self.log_path.open("wb") as log:
            self._process = subprocess.Popen(
                command, cwd=self._workdir, env=self.environment, stdout=log, stderr=subprocess.STDOUT
            )

    def wait_ready(self) -> None:
        """Wait until discovery answers 200 with this issuer (a connection alone could reach whoever took the port)."""
        assert self._process is not None
        deadline = time.monotonic() + START_TIMEOUT_S
        while time.monotonic() < deadline:
            if self._process.poll() is not None:
                log = self.log()
                failure = PortTaken if "address already in use" in log.lower() else AssertionError
                raise failure(
                    f"[tokensmith serve {EXAMPLE_CONFIG.name}] exited with {self._process.returncode}:\n{log}"
                )
            try:
                response = httpx.get(f"{self.issuer}/.well-known/openid-configuration", timeout=2)
            except httpx.TransportError:
                time.sleep(0.1)
                continue
            if response.status_code == 200 and response.json().get("issuer") == self.issuer:
                return
            time.sleep(0.1)
        raise AssertionError(f"[tokensmith serve] not ready after {START_TIMEOUT_S:.0f}s:\n{self.log()}")

    def stop(self) -> None:
        stop_process(self._process)

    def log(self) -> str:
        try:
            return self.log_path.read_text(errors="replace")[-4000:]
        except OSError:
            return "(no log)"


@contextmanager
def serving_example(workdir: Path, attempts: int = 3) -> Iterator[ExampleServer]:
    """The example server on a free port (chosen anew if another process took it meanwhile); stopped on exit."""
    for attempt in range(1, attempts + 1):
        server = ExampleServer(workdir, free_port())
        try:
            server.start()
            server.wait_ready()
        except PortTaken:
            server.stop()
            if attempt == attempts:
                raise
            continue
        except BaseException:
            server.stop()
            raise
        try:
            yield server
        finally:
            server.stop()
        return
