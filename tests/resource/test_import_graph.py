from __future__ import annotations

import json
import subprocess
import sys

import pytest

FORBIDDEN = ("sqlalchemy", "jinja2", "tokensmith.server", "tokensmith.store", "fastapi", "starlette", "alembic")


@pytest.mark.parametrize("module", ["tokensmith.resource", "tokensmith.client", "tokensmith.jose"])
def test_service_libraries_import_no_server_code(module: str) -> None:
    """A message-service installs tokensmith[resource]: the libraries must not pull the server's dependencies."""
    script = f"import sys, json, {module}; print(json.dumps(sorted(sys.modules)))"
    output = subprocess.run([sys.executable, "-c", script], check=True, capture_output=True, text=True).stdout
    loaded = json.loads(output)
    leaked = [name for name in loaded if name.startswith(FORBIDDEN)]
    assert leaked == []


def test_the_fastapi_dependencies_are_a_separate_import() -> None:
    script = "import sys, tokensmith.resource.fastapi; print('fastapi' in sys.modules)"
    output = subprocess.run([sys.executable, "-c", script], check=True, capture_output=True, text=True).stdout
    assert output.strip() == "True"


@pytest.mark.parametrize("module", ["tokensmith.resource", "tokensmith.client", "tokensmith.jose"])
def test_public_names_are_exported(module: str) -> None:
    imported = __import__(module, fromlist=["__all__"])
    assert sorted(imported.__all__) == sorted(set(imported.__all__))
    for name in imported.__all__:
        assert getattr(imported, name) is not None
