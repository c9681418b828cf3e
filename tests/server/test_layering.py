"""The protocol core stays free of the web framework (and of SQL): only endpoints/ and app.py know Starlette."""

from __future__ import annotations

import ast
from pathlib import Path

import pytest

SERVER = Path(__file__).resolve().parents[2] / "src" / "tokensmith" / "server"
PURE_MODULES = [
    "access_tokens.py",
    "authorization.py",
    "client_assertion.py",
    "client_auth.py",
    "clock.py",
    "digest.py",
    "metadata.py",
    "passwords.py",
    "pkce.py",
    "principals.py",
    "rate_limit.py",
    "sessions.py",
    "keys.py",
    "subject_tokens.py",
    "tokens.py",
    "grants/__init__.py",
    "grants/authorization_code.py",
    "grants/client_credentials.py",
    "grants/exchange_refresh.py",
    "grants/issuance.py",
    "grants/refresh_token.py",
]
FORBIDDEN = ("starlette", "fastapi", "uvicorn", "sqlalchemy", "jinja2", "tokensmith.server.endpoints")


def imported_modules(path: Path) -> set[str]:
    names: set[str] = set()
    for node in ast.walk(ast.parse(path.read_text(encoding="utf-8"))):
        if isinstance(node, ast.Import):
            names.update(alias.name for alias in node.names)
        elif isinstance(node, ast.ImportFrom) and node.module:
            names.add(node.module)
    return names


@pytest.mark.parametrize("module", PURE_MODULES)
def test_pure_module_has_no_web_or_sql_imports(module: str) -> None:
    imports = imported_modules(SERVER / module)
    offending = sorted(name for name in imports if name.startswith(FORBIDDEN))
    assert offending == []
