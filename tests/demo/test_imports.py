"""user-service and message-service stand on the libraries only: no authorization server, database or templates."""

from __future__ import annotations

import subprocess
import sys

import pytest

SERVER_SIDE = ("tokensmith.server", "tokensmith.store", "sqlalchemy", "alembic", "jinja2")


@pytest.mark.parametrize("module", ["tokensmith.demo.user_service", "tokensmith.demo.message_service"])
def test_a_demo_service_imports_nothing_of_the_authorization_server(module: str) -> None:
    probe = f"import sys, {module}; print(' '.join(m for m in {SERVER_SIDE!r} if m in sys.modules))"
    done = subprocess.run([sys.executable, "-c", probe], capture_output=True, text=True, timeout=60)
    assert done.returncode == 0, done.stderr
    assert done.stdout.strip() == ""
