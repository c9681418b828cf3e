"""The protocol core stays free of the web framework (and of SQL): only endpoints/ and app.py know Starlette."""

from __future__ import annotations

import ast
from pathlib import Path

import pytest

SERVER = Path(__file__).resolve().parents[2] / "src" / "tokensmith" / "server"
PURE_MODULES = [
    "core/access_tokens.py",
    "core/authorization.py",
    "core/client_assertion.py",
    "core/client_auth.py",
    "clock.py",
    "core/digest.py",
    "core/metadata.py",
    "core/passwords.py",
    "core/pkce.py",
    "core/principals.py",
    "core/rate_limit.py",
    "core/sessions.py",
    "keys.py",
    "core/subject_tokens.py",
    "core/tokens.py",
    "core/grants/__init__.py",
    "core/grants/authorization_code.py",
    "core/grants/client_credentials.py",
    "core/grants/exchange_refresh.py",
    "core/grants/issuance.py",
    "core/grants/refresh_token.py",
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
