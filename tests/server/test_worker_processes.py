"""Several server processes on one port (server/worker_processes.py): connections reach every process, a process
that dies is replaced, start-up failures and a taken port fail cleanly, SIGTERM stops everything.

The supervisor runs in a subprocess (it owns signal handlers and child processes); the app is a tiny ASGI app that
answers with the PID of the process that served the request.
"""

from __future__ import annotations

import asyncio
import os
import signal
import socket
import subprocess
import sys
import time
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

import httpx
import pytest
import yaml
from tests.server.configs import SERVICE_CLIENT, SERVICE_SECRET, config_data
from tests.support.server import free_port

REPO = Path(__file__).resolve().parents[2]
SERVE = [sys.executable, "-m", "tokensmith", "serve"]


def supervisor_command(app: str, port: int, processes: int, min_uptime_s: float) -> list[str]:
    code = (
        "from tokensmith.server.worker_processes import WorkerSpec, serve_processes\n"
        f"serve_processes(WorkerSpec(app={app!r}, host='127.0.0.1', port={port}, log_level='warning'), "
        f"{processes}, min_uptime_s={min_uptime_s})\n"
    )
    return [sys.executable, "-c", code]


@contextmanager
def running(command: list[str], tmp_path: Path) -> Iterator[subprocess.Popen[bytes]]:
    log = (tmp_path / "supervisor.log").open("wb")
    process = subprocess.Popen(command, cwd=REPO, stdout=log, stderr=subprocess.STDOUT)
    try:
        yield process
    finally:
        if process.poll() is None:
            process.send_signal(signal.SIGTERM)
            try:
                process.wait(30)
            except subprocess.TimeoutExpired:
                process.kill()
                process.wait()
        log.close()


def children(pid: int) -> set[int]:
    found: set[int] = set()
    for task in Path(f"/proc/{pid}/task").iterdir():
        with (task / "children").open() as listing:
            found.update(int(child) for child in listing.read().split())
    return found


def alive(pid: int) -> bool:
    try:
        state = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()[0]
    except OSError:
        return False
    return state != "Z"  # a zombie has exited; its parent reaps it


def pids_serving(port: int, connections: int) -> list[int]:
    """Open ``connections`` connections at once (as a client pool would) and ask each which process serves it."""

    async def ask_all() -> list[int]:
        clients = [httpx.AsyncClient(base_url=f"http://127.0.0.1:{port}", timeout=10) for _ in range(connections)]
        try:
            responses = await asyncio.gather(*(client.get("/") for client in clients))
            return [int(response.text) for response in responses]
        finally:
            await asyncio.gather(*(client.aclose() for client in clients))

    return asyncio.run(ask_all())


def wait_until_serving(port: int, process: subprocess.Popen[bytes], tmp_path: Path, deadline_s: float = 30) -> None:
    deadline = time.monotonic() + deadline_s
    while time.monotonic() < deadline:
        if process.poll() is not None:
            pytest.fail(f"supervisor exited: {(tmp_path / 'supervisor.log').read_text(errors='replace')}")
        try:
            if httpx.get(f"http://127.0.0.1:{port}/", timeout=1).status_code == 200:
                return
        except httpx.HTTPError:
            time.sleep(0.1)
    pytest.fail("the server did not start")


def test_a_burst_of_connections_reaches_every_process(tmp_path: Path) -> None:
    port = free_port()
    with running(supervisor_command("tests.support.pid_app:app", port, 2, 10), tmp_path) as supervisor:
        wait_until_serving(port, supervisor, tmp_path)
        workers = children(supervisor.pid)
        served = pids_serving(port, 32)
        # With one shared socket, uvloop's accept loop often hands the whole burst to one process.
        assert set(served) <= workers
        assert len(set(served)) == 2, f"all 32 connections reached {set(served)}"


def test_a_process_that_dies_while_serving_is_replaced(tmp_path: Path) -> None:
    port = free_port()
    with running(supervisor_command("tests.support.pid_app:app", port, 2, 0.5), tmp_path) as supervisor:
        wait_until_serving(port, supervisor, tmp_path)
        time.sleep(0.6)  # past the start-up window
        victim = pids_serving(port, 1)[0]
        os.kill(victim, signal.SIGKILL)
        deadline = time.monotonic() + 30
        while time.monotonic() < deadline:
            served = set(pids_serving(port, 16))
            if victim not in served and len(served) == 2:
                break
            time.sleep(0.2)
        assert victim not in served
        assert len(served) == 2  # a new process took its place on the same port
        assert supervisor.poll() is None


def test_sigterm_stops_every_process_and_the_supervisor_exits_cleanly(tmp_path: Path) -> None:
    port = free_port()
    with running(supervisor_command("tests.support.pid_app:app", port, 2, 10), tmp_path) as supervisor:
        wait_until_serving(port, supervisor, tmp_path)
        workers = children(supervisor.pid)
        supervisor.send_signal(signal.SIGTERM)
        assert supervisor.wait(30) == 0
    # Every child ends (the servers at once; multiprocessing's resource tracker once it sees the supervisor gone).
    deadline = time.monotonic() + 10
    while [pid for pid in workers if alive(pid)] and time.monotonic() < deadline:
        time.sleep(0.1)
    assert [pid for pid in workers if alive(pid)] == []
    with pytest.raises(httpx.ConnectError):
        httpx.get(f"http://127.0.0.1:{port}/", timeout=2)


def test_a_process_failing_at_start_up_fails_the_supervisor(tmp_path: Path) -> None:
    port = free_port()
    with running(supervisor_command("tests.support.pid_app:no_such_app", port, 2, 10), tmp_path) as supervisor:
        assert supervisor.wait(60) != 0
    log = (tmp_path / "supervisor.log").read_text(errors="replace")
    assert "StartupFailed" in log
    assert "during start-up" in log


def test_serve_with_workers_on_a_taken_port_fails_with_one_line(tmp_path: Path) -> None:
    config_path = tmp_path / "server.yaml"
    config_path.write_text(
        yaml.safe_dump({**config_data(), "database-url": f"sqlite+aiosqlite:///{tmp_path / 'ts.db'}"})
    )
    with socket.socket() as taken:
        taken.bind(("127.0.0.1", 0))
        taken.listen()
        port = taken.getsockname()[1]
        result = subprocess.run(
            [*SERVE, "--config", str(config_path), "--port", str(port), "--workers", "2"],
            capture_output=True,
            text=True,
            timeout=60,
            cwd=tmp_path,
        )
    assert result.returncode == 1
    assert f"cannot listen on 127.0.0.1:{port}" in result.stderr
    assert "Traceback" not in result.stderr


def test_serve_with_workers_creates_the_signing_keys_once_and_every_process_verifies_the_others_tokens(
    tmp_path: Path,
) -> None:
    port = free_port()
    config = {
        **config_data(),
        "issuer": f"http://127.0.0.1:{port}",
        "database-url": f"sqlite+aiosqlite:///{tmp_path / 'ts.db'}",
    }
    config_path = tmp_path / "server.yaml"
    config_path.write_text(yaml.safe_dump(config))
    command = [*SERVE, "--config", str(config_path), "--port", str(port), "--workers", "2", "--no-access-log"]
    with running(command, tmp_path) as server:
        deadline = time.monotonic() + 60
        while True:
            assert server.poll() is None, (tmp_path / "supervisor.log").read_text(errors="replace")
            try:
                if httpx.get(f"http://127.0.0.1:{port}/oauth2/jwks", timeout=1).status_code == 200:
                    break
            except httpx.HTTPError:
                pass
            assert time.monotonic() < deadline, "the server did not start"
            time.sleep(0.2)

        async def each_connection_once() -> tuple[list[str], list[int]]:
            clients = [httpx.AsyncClient(base_url=f"http://127.0.0.1:{port}", timeout=10) for _ in range(16)]
            try:
                jwks = await asyncio.gather(*(c.get("/oauth2/jwks") for c in clients))
                # A token from each connection, introspected on every connection: each process checks the other's.
                tokens = await asyncio.gather(
                    *(
                        c.post(
                            "/oauth2/token",
                            data={"grant_type": "client_credentials", "scope": "reports.read"},
                            auth=(SERVICE_CLIENT, SERVICE_SECRET),
                        )
                        for c in clients
                    )
                )
                token = tokens[0].json()["access_token"]
                checks = await asyncio.gather(
                    *(
                        c.post("/oauth2/introspect", data={"token": token}, auth=(SERVICE_CLIENT, SERVICE_SECRET))
                        for c in clients
                    )
                )
                kids = sorted({key["kid"] for response in jwks for key in response.json()["keys"]})
                return kids, [int(check.json()["active"]) for check in checks]
            finally:
                await asyncio.gather(*(c.aclose() for c in clients))

        kids, active = asyncio.run(each_connection_once())
    assert len(kids) == 2  # one ES256 and one RS256 key, made once before the processes started
    assert active == [1] * 16
    log = (tmp_path / "supervisor.log").read_text(errors="replace")
    assert f"tokensmith serving on http://127.0.0.1:{port} with 2 processes" in log
