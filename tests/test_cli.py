"""The ``tokensmith`` command: config check, serve's start-up errors, keys, hash-password, help everywhere."""

from __future__ import annotations

import asyncio
import os
import socket
import subprocess
import sys
import time
from pathlib import Path
from typing import Any

import httpx
import pytest
import typer
from tests.support.server import free_port
from tests.support.store_batches import audit_reasons, seed_expired_and_live_tokens
from typer.testing import CliRunner

from tokensmith.cli import app
from tokensmith.server.core.passwords import verify_password

ROOT = Path(__file__).resolve().parent.parent
runner = CliRunner()


def write(tmp_path: Path, text: str) -> Path:
    path = tmp_path / "server.yaml"
    path.write_text(text, encoding="utf-8")
    return path


def config_check_fails(path: Path) -> str:
    """``config check`` on a bad file: exit 1 with a message that names the file, not a traceback. Its output."""
    result = runner.invoke(app, ["config", "check", str(path)])
    assert result.exit_code == 1
    assert str(path) in result.output
    assert "Traceback" not in result.output
    return result.output


def serve_fails(path: Path) -> tuple[str, str]:
    """``tokensmith serve`` on a config it cannot start with: exit 1, one line on stderr, no traceback.

    The line, and all of stderr (for what must not appear anywhere in it).
    """
    completed = subprocess.run(
        [sys.executable, "-m", "tokensmith", "serve", "--config", str(path)],
        capture_output=True,
        text=True,
        timeout=60,
        check=False,
    )
    assert completed.returncode == 1
    assert "Traceback" not in completed.stderr
    lines = completed.stderr.strip().splitlines()
    assert len(lines) == 1
    return lines[0], completed.stderr


def test_example_config_is_valid() -> None:
    result = runner.invoke(app, ["config", "check", str(ROOT / "examples" / "authorization-server.yaml")])
    assert result.exit_code == 0, result.output
    assert result.output.startswith("OK: ")
    assert "2 clients, 1 users" in result.output


def test_bad_yaml_names_file_and_line(tmp_path: Path) -> None:
    output = config_check_fails(write(tmp_path, "issuer: [unclosed\n"))
    assert "not valid YAML" in output
    assert "line" in output
    assert len(output.strip().splitlines()) == 1


def test_bad_key_names_file_and_key(tmp_path: Path) -> None:
    path = write(
        tmp_path,
        "clients:\n  app:\n    registration:\n      client-id: app\n      client-secret: plain-text\n",
    )
    output = config_check_fails(path)
    assert "clients.app.registration.client-secret" in output
    assert "{noop}" in output


def test_unknown_key_and_missing_file(tmp_path: Path) -> None:
    result = runner.invoke(app, ["config", "check", str(write(tmp_path, "isuer: http://x\n"))])
    assert result.exit_code == 1
    assert "isuer" in result.output
    missing = runner.invoke(app, ["config", "check", str(tmp_path / "absent.yaml")])
    assert missing.exit_code == 1
    assert "cannot read" in missing.output


def test_serve_with_a_bad_config_prints_one_line_and_exits_1(tmp_path: Path) -> None:
    path = write(tmp_path, "port: not-a-port\n")
    line, _ = serve_fails(path)
    assert str(path) in line
    assert "port" in line


def test_keys_list_and_rotate(tmp_path: Path) -> None:
    path = write(tmp_path, f"database-url: sqlite+aiosqlite:///{tmp_path / 'keys.db'}\n")
    listed = runner.invoke(app, ["keys", "list", "--config", str(path)])
    assert listed.exit_code == 0, listed.output
    first = listed.output.strip().splitlines()
    assert len(first) == 2  # one ES256 and one RS256 key, generated on first use
    assert {line.split()[1] for line in first} == {"ES256", "RS256"}
    assert all(line.split()[2] == "active" for line in first)
    again = runner.invoke(app, ["keys", "list", "--config", str(path)])
    assert again.output.strip().splitlines() == first  # persisted, not regenerated
    rotated = runner.invoke(app, ["keys", "rotate", "--config", str(path), "--alg", "ES256"])
    assert rotated.exit_code == 0, rotated.output
    assert "new active ES256 key" in rotated.output
    statuses = [line.split()[1:3] for line in rotated.output.strip().splitlines()[1:]]
    assert sorted(statuses) == [["ES256", "active"], ["ES256", "retired"], ["RS256", "active"]]
    bad = runner.invoke(app, ["keys", "rotate", "--config", str(path), "--alg", "HS256"])
    assert bad.exit_code == 1


@pytest.mark.parametrize(
    ("retention", "purged", "events_left"),
    [
        ("", "purged 2 expired rows", ["recent"]),  # the expired token and the year-old audit event
        ("audit-retention: 0\n", "purged 1 expired row", ["old", "recent"]),  # audit events kept for good
    ],
)
def test_purge_deletes_expired_rows_now(tmp_path: Path, retention: str, purged: str, events_left: list[str]) -> None:
    database_url = f"sqlite+aiosqlite:///{tmp_path / 'purge.db'}"
    path = write(tmp_path, f"database-url: {database_url}\npurge-interval: 0\n{retention}")
    asyncio.run(seed_expired_and_live_tokens(database_url))
    first = runner.invoke(app, ["purge", "--config", str(path)])
    assert first.exit_code == 0, first.output
    assert first.output.strip() == purged
    assert asyncio.run(audit_reasons(database_url)) == events_left
    again = runner.invoke(app, ["purge", "--config", str(path)])
    assert again.output.strip() == "purged 0 expired rows"


def test_hash_password_from_stdin() -> None:
    result = runner.invoke(app, ["hash-password", "--stdin"], input="s3cret\n")
    assert result.exit_code == 0, result.output
    hashed = result.output.strip()
    assert hashed.startswith("{argon2}$argon2id$")
    assert verify_password(hashed, "s3cret")
    empty = runner.invoke(app, ["hash-password", "--stdin"], input="\n")
    assert empty.exit_code == 1


def test_hash_password_prompt_confirms() -> None:
    result = runner.invoke(app, ["hash-password"], input="pw\npw\n")
    assert result.exit_code == 0, result.output
    assert verify_password(result.output.strip().splitlines()[-1], "pw")


@pytest.mark.parametrize(
    "command",
    [
        [],
        ["serve"],
        ["config"],
        ["config", "check"],
        ["keys"],
        ["keys", "list"],
        ["keys", "rotate"],
        ["hash-password"],
        ["conformance"],
        ["conformance", "exchange"],
    ],
)
def test_help_everywhere(command: list[str]) -> None:
    result = runner.invoke(app, [*command, "--help"])
    assert result.exit_code == 0
    assert "Usage" in result.output


def test_every_command_is_registered() -> None:
    group = typer.main.get_command(app)
    assert isinstance(group, typer.core.TyperGroup)
    assert sorted(group.commands) == [
        "audit",
        "bench",
        "clients",
        "config",
        "conformance",
        "demo",
        "exchange",
        "hash-password",
        "keys",
        "purge",
        "serve",
        "users",
    ]


def test_the_command_line_loads_no_extra() -> None:
    """``pip install tokensmith`` alone has a working command line: a command imports its extra when it runs."""
    extras = ("sqlalchemy", "alembic", "uvicorn", "starlette", "fastapi", "jinja2", "argon2", "tokensmith.server")
    script = f"import sys, tokensmith.cli; print(' '.join(m for m in sorted(sys.modules) if m.startswith({extras!r})))"
    loaded = subprocess.run([sys.executable, "-c", script], capture_output=True, text=True, timeout=60, check=True)
    assert loaded.stdout.strip() == ""


def test_version() -> None:
    result = runner.invoke(app, ["--version"])
    assert result.exit_code == 0
    assert result.output.startswith("tokensmith ")


def test_serve_with_an_unreachable_database_prints_one_line_and_exits_1(tmp_path: Path) -> None:
    kek = "keys: {encryption-key: AAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAA}\n"  # PostgreSQL needs one
    path = write(tmp_path, "database-url: postgresql+asyncpg://tokensmith:hunter2@127.0.0.1:1/none\n" + kek)
    line, stderr = serve_fails(path)
    assert line.startswith("tokensmith: cannot open the database postgresql+asyncpg://tokensmith:***@127.0.0.1:1/none")
    assert "hunter2" not in stderr


def test_serve_with_two_workers_answers(tmp_path: Path) -> None:
    port = free_port()
    env = {k: v for k, v in os.environ.items() if not k.startswith("TOKENSMITH_")}
    env["TOKENSMITH_DATABASE_URL"] = f"sqlite+aiosqlite:///{tmp_path / 'workers.db'}"
    example = ROOT / "examples" / "authorization-server.yaml"
    command = [sys.executable, "-m", "tokensmith", "serve", "--config", str(example), "--port", str(port)]
    log = (tmp_path / "serve.log").open("wb")
    process = subprocess.Popen([*command, "--workers", "2", "--log-level", "warning"], stdout=log, stderr=log, env=env)
    try:
        url = f"http://127.0.0.1:{port}"
        deadline = time.monotonic() + 60
        while True:
            assert process.poll() is None, (tmp_path / "serve.log").read_text()
            try:
                if httpx.get(url + "/health", timeout=2).status_code == 200:
                    break
            except httpx.TransportError:
                assert time.monotonic() < deadline, "the server did not start"
                time.sleep(0.2)
        for _ in range(8):  # a connection each: the kernel spreads them over both processes
            response = httpx.post(
                url + "/oauth2/token", data={"grant_type": "client_credentials"}, auth=("message-service", "token")
            )
            assert response.json()["error"] == "unauthorized_client"
        # Whichever process a scrape reaches answers for both: without the shared metrics directory each scrape
        # showed one process's part of the 8 (all 8 in one process has a chance of 1 in 128).
        counted = 'tokensmith_token_requests_total{grant_type="client_credentials",outcome="unauthorized_client"} 8.0'
        for _ in range(4):
            assert counted in httpx.get(url + "/metrics").text.splitlines()
    finally:
        process.terminate()
        process.wait(timeout=30)
        log.close()


@pytest.mark.parametrize(("flags", "expected"), [([], True), (["--no-access-log"], False)])
def test_serve_passes_the_access_log_choice_to_uvicorn(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, flags: list[str], expected: bool
) -> None:
    from tokensmith.server import serving

    seen: dict[str, Any] = {}
    monkeypatch.setattr(serving, "run", lambda app, **options: seen.update(options))
    path = write(tmp_path, f"database-url: sqlite+aiosqlite:///{tmp_path / 'db.sqlite'}\n")
    result = runner.invoke(app, ["serve", "--config", str(path), *flags])
    assert result.exit_code == 0, result.output
    assert seen["access_log"] is expected
    assert seen["http"].__name__ == "TokensmithHttpProtocol"
    assert seen["proxy_headers"] is False  # no forwarded-allow-ips configured


@pytest.mark.parametrize("workers", ["1", "2"])
def test_serve_on_a_taken_port_fails_with_exit_1(tmp_path: Path, workers: str) -> None:
    path = write(tmp_path, f"database-url: sqlite+aiosqlite:///{tmp_path / 'db.sqlite'}\n")
    with socket.socket() as taken:
        taken.bind(("127.0.0.1", 0))
        taken.listen()
        port = taken.getsockname()[1]
        completed = subprocess.run(
            [
                sys.executable,
                "-m",
                "tokensmith",
                "serve",
                "--config",
                str(path),
                "--port",
                str(port),
                "--workers",
                workers,
            ],
            capture_output=True,
            text=True,
            timeout=60,
            check=False,
        )
    assert completed.returncode == 1
    assert f"tokensmith: the server could not start on 127.0.0.1:{port}" in completed.stderr
    assert "Traceback" not in completed.stderr
