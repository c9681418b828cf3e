"""``tokensmith serve`` logs each request's path, never its query string: a logout's ``id_token_hint`` is a token.
Checked at the most verbose log level ``serve`` offers, with proxy headers sent but not trusted."""

from __future__ import annotations

import os
import subprocess
import sys
import time
from pathlib import Path

import httpx
import yaml
from tests.server.configs import config_data
from tests.support.server import free_port

HINT = "eyJhbGciOiJFUzI1NiJ9.c2VjcmV0LWlkLXRva2VuLWNsYWltcw.c2lnbmF0dXJl"


def test_a_logout_with_id_token_hint_does_not_reach_the_log(tmp_path: Path) -> None:
    port = free_port()
    config = {**config_data(), "issuer": f"http://127.0.0.1:{port}"}
    config["database-url"] = f"sqlite+aiosqlite:///{tmp_path / 'ts.db'}"
    config_path = tmp_path / "server.yaml"
    config_path.write_text(yaml.safe_dump(config))
    env = {k: v for k, v in os.environ.items() if not k.startswith("TOKENSMITH_")}
    command = [sys.executable, "-m", "tokensmith", "serve", "--config", str(config_path), "--port", str(port)]
    log_path = tmp_path / "serve.log"
    with log_path.open("wb") as log:
        process = subprocess.Popen([*command, "--log-level", "debug"], stdout=log, stderr=log, env=env)
        try:
            url = f"http://127.0.0.1:{port}"
            deadline = time.monotonic() + 60
            while True:
                assert process.poll() is None, log_path.read_text()
                try:
                    if httpx.get(url + "/health", timeout=2).status_code == 200:
                        break
                except httpx.TransportError:
                    assert time.monotonic() < deadline, "the server did not start"
                    time.sleep(0.2)
            response = httpx.get(
                url + "/connect/logout",
                params={"id_token_hint": HINT, "state": "s"},
                headers={"X-Forwarded-For": "198.51.100.7"},
            )
            assert response.status_code < 500
        finally:
            process.terminate()
            process.wait(timeout=30)
    text = log_path.read_text(errors="replace")
    assert '"GET /connect/logout HTTP/1.1"' in text
    assert "127.0.0.1:" in text
    assert "id_token_hint" not in text
    assert HINT.split(".")[1] not in text
    assert "198.51.100.7" not in text  # proxy headers from an address not in forwarded-allow-ips are ignored
