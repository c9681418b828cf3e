"""`tokensmith demo` as a user runs it (a subprocess): --check, a taken port, Ctrl-C."""

from __future__ import annotations

import os
import signal
import socket
import subprocess
import sys
import time
from collections.abc import Iterator
from pathlib import Path

import pytest

STARTUP_SECONDS = 60


def _free_ports(count: int) -> list[int]:
    sockets = [socket.socket() for _ in range(count)]
    try:
        for sock in sockets:
            sock.bind(("127.0.0.1", 0))
        return [sock.getsockname()[1] for sock in sockets]
    finally:
        for sock in sockets:
            sock.close()


def _command(ports: list[int], database: Path, *extra: str) -> list[str]:
    as_port, client_port, user_port, message_port = ports
    return [
        sys.executable,
        "-c",
        "from tokensmith.cli import main; main()",  # the `tokensmith` entry point, whatever PATH says
        "demo",
        "--as-port",
        str(as_port),
        "--client-port",
        str(client_port),
        "--user-port",
        str(user_port),
        "--message-port",
        str(message_port),
        "--database-url",
        f"sqlite+aiosqlite:///{database}",
        *extra,
    ]


def _env() -> dict[str, str]:
    return {**os.environ, "PYTHONUNBUFFERED": "1"}


def test_check_prints_each_step_and_exits_0(tmp_path: Path) -> None:
    ports = _free_ports(4)
    done = subprocess.run(
        _command(ports, tmp_path / "demo.db", "--check"),
        capture_output=True,
        text=True,
        timeout=STARTUP_SECONDS,
        env=_env(),
    )
    assert done.returncode == 0, done.stdout + done.stderr
    lines = done.stdout.splitlines()
    assert f"issuer http://localhost:{ports[0]}" in lines[0]
    assert [line[:10] for line in lines[1:8]] == [f"[{n}/7] ok  " for n in range(1, 8)]
    assert lines[-1] == "check passed"


def test_dpop_check_binds_every_token_and_exits_0(tmp_path: Path) -> None:
    ports = _free_ports(4)
    done = subprocess.run(
        _command(ports, tmp_path / "demo.db", "--dpop", "--check"),
        capture_output=True,
        text=True,
        timeout=STARTUP_SECONDS,
        env=_env(),
    )
    assert done.returncode == 0, done.stdout + done.stderr
    lines = done.stdout.splitlines()
    assert lines[0].startswith("checking the article's flow (DPoP variant) against")
    assert [line[:10] for line in lines[1:8]] == [f"[{n}/7] ok  " for n in range(1, 8)]
    assert "bound: your token cnf.jkt " in lines[4]
    assert "bound: your token cnf.jkt " in lines[5]
    assert lines[-1] == "check passed"


def test_a_taken_port_is_a_one_line_error_naming_it(tmp_path: Path) -> None:
    ports = _free_ports(4)
    with socket.socket() as taken:
        taken.bind(("127.0.0.1", ports[1]))
        taken.listen()
        done = subprocess.run(
            _command(ports, tmp_path / "demo.db"), capture_output=True, text=True, timeout=STARTUP_SECONDS, env=_env()
        )
    assert done.returncode == 1
    assert done.stderr.strip().count("\n") == 0
    assert str(ports[1]) in done.stderr
    assert "client app" in done.stderr


@pytest.fixture
def serving_demo(tmp_path: Path) -> Iterator[tuple[subprocess.Popen[str], list[int]]]:
    ports = _free_ports(4)
    process = subprocess.Popen(
        _command(ports, tmp_path / "demo.db"), stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True, env=_env()
    )
    try:
        yield process, ports
    finally:
        if process.poll() is None:
            process.kill()
        process.wait(timeout=10)


def test_ctrl_c_stops_all_four_cleanly(serving_demo: tuple[subprocess.Popen[str], list[int]]) -> None:
    process, ports = serving_demo
    assert process.stdout is not None
    banner = []
    deadline = time.monotonic() + STARTUP_SECONDS
    while time.monotonic() < deadline:
        line = process.stdout.readline()
        if not line:
            break
        banner.append(line)
        if "Ctrl-C stops all four" in line:
            break
    text = "".join(banner)
    assert f"http://localhost:{ports[0]}" in text
    assert "baeldung / password" in text
    for port in ports:
        with socket.create_connection(("127.0.0.1", port), timeout=5):
            pass

    process.send_signal(signal.SIGINT)
    out, err = process.communicate(timeout=20)
    assert process.returncode == 0, err
    assert "stopped all four services" in out
    assert "Traceback" not in err
    for port in ports:  # every port is free again
        with socket.socket() as sock:
            sock.bind(("127.0.0.1", port))


def test_a_service_that_cannot_start_is_a_one_line_error_and_the_others_stop(tmp_path: Path) -> None:
    ports = _free_ports(4)
    command = _command(ports, tmp_path / "demo.db")
    # A valid URL whose database cannot be created (a file stands where its directory would be): the server fails
    # at start.
    (tmp_path / "a-file").write_text("")
    command[command.index("--database-url") + 1] = f"sqlite+aiosqlite:///{tmp_path / 'a-file' / 'demo.db'}"
    done = subprocess.run(command, capture_output=True, text=True, timeout=STARTUP_SECONDS, env=_env())
    assert done.returncode == 1
    assert done.stderr.strip().count("\n") == 0, done.stderr
    assert "the authorization server did not start" in done.stderr
    assert "a-file" in done.stderr
    for port in ports:
        with socket.socket() as sock:
            sock.bind(("127.0.0.1", port))


def test_an_unsupported_database_url_is_a_one_line_error(tmp_path: Path) -> None:
    ports = _free_ports(4)
    command = _command(ports, tmp_path / "demo.db")
    command[command.index("--database-url") + 1] = "nosuch://database"
    done = subprocess.run(command, capture_output=True, text=True, timeout=STARTUP_SECONDS, env=_env())
    assert done.returncode == 1
    assert done.stderr.strip().count("\n") == 0, done.stderr
    assert "database-url" in done.stderr
    assert "'nosuch' is not supported" in done.stderr
