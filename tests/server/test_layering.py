"""Arrows point down: the protocol core and the layers under it know no web framework and no SQL.

* Every module of ``server/core/`` (found by glob, so a new one is checked without being listed), and the signing
  keys and clock it uses, import no web framework, template engine, metrics library or SQL toolkit, and of
  tokensmith only the core itself, the keys and clock, ``jose``, ``config``, ``errors`` and the store's interface
  (never its SQL implementation, nor the HTTP glue, the app, the CLI or the demo). httpx is allowed: the core hands
  an HTTP client to ``tokensmith.jose``'s remote key sets, which do the fetching.
* ``tokensmith.jose``, ``tokensmith.config`` and the store's interface (``store/base.py``, ``store/records.py``)
  import no web framework and no SQL either, and nothing of the server, the CLI or the demo.

Every import counts, wherever it is written (inside a function, under ``if TYPE_CHECKING:``).
"""

from __future__ import annotations

import ast
from pathlib import Path

import pytest

SRC = Path(__file__).resolve().parents[2] / "src"
PACKAGE = SRC / "tokensmith"
SERVER = PACKAGE / "server"

WEB_SQL_AND_FRIENDS = (
    "starlette",
    "fastapi",
    "uvicorn",
    "httptools",
    "h11",
    "multipart",
    "jinja2",
    "prometheus_client",
    "sqlalchemy",
    "alembic",
    "aiosqlite",
    "asyncpg",
    "psycopg",
)
CORE_MAY_IMPORT = (
    "tokensmith.server.core",
    "tokensmith.server.keys",
    # The sealing of private keys (AES-GCM); it also finds the default key file beside a SQLite database.
    "tokensmith.server.key_encryption",
    "tokensmith.server.clock",
    "tokensmith.jose",
    "tokensmith.config",
    "tokensmith.errors",
    "tokensmith.store.base",
    "tokensmith.store.records",
)
BELOW_THE_SERVER_MAY_NOT_IMPORT = (
    "tokensmith.server",
    "tokensmith.cli",
    "tokensmith.demo",
    "tokensmith.conformance",
    "tokensmith.resource",
    "tokensmith.store.sql",
    "tokensmith.store.engine",
    "tokensmith.store.group_commit",
)


def module_name(path: Path, root: Path = SRC) -> str:
    parts = list(path.relative_to(root).with_suffix("").parts)
    if parts[-1] == "__init__":
        parts.pop()
    return ".".join(parts)


def imported_names(path: Path, root: Path = SRC) -> set[str]:
    """The qualified names a module imports (``from a.b import c`` gives ``a.b.c``), relative imports resolved."""
    name = module_name(path, root)
    package = name if path.name == "__init__.py" else name.rpartition(".")[0]
    names: set[str] = set()
    for node in ast.walk(ast.parse(path.read_text(encoding="utf-8"), str(path))):
        if isinstance(node, ast.Import):
            names.update(alias.name for alias in node.names)
        elif isinstance(node, ast.ImportFrom):
            base = node.module or ""
            if node.level:
                anchor = package.rsplit(".", node.level - 1)[0] if node.level > 1 else package
                base = f"{anchor}.{base}" if base else anchor
            names.update(f"{base}.{alias.name}" for alias in node.names)
    return names


def under(name: str, prefixes: tuple[str, ...]) -> bool:
    return any(name == prefix or name.startswith(f"{prefix}.") for prefix in prefixes)


def core_violations(path: Path, root: Path = SRC) -> list[str]:
    return sorted(
        name
        for name in imported_names(path, root)
        if under(name, WEB_SQL_AND_FRIENDS) or (under(name, ("tokensmith",)) and not under(name, CORE_MAY_IMPORT))
    )


def lower_layer_violations(path: Path, root: Path = SRC) -> list[str]:
    return sorted(
        name
        for name in imported_names(path, root)
        if under(name, WEB_SQL_AND_FRIENDS) or under(name, BELOW_THE_SERVER_MAY_NOT_IMPORT)
    )


def relative(paths: list[Path]) -> list[str]:
    return [str(path.relative_to(PACKAGE)) for path in paths]


CORE_MODULES = sorted((SERVER / "core").rglob("*.py"))
# The signing keys and the clock stay beside the core, which uses them: they follow its rules.
CORE_COMPANIONS = sorted([*SERVER.glob("keys.py"), *SERVER.glob("keys/**/*.py"), SERVER / "clock.py"])
LOWER_MODULES = sorted(
    [
        *(PACKAGE / "jose").rglob("*.py"),
        *(PACKAGE / "config").rglob("*.py"),
        PACKAGE / "store" / "base.py",
        PACKAGE / "store" / "records.py",
    ]
)


def test_the_globs_find_the_layers() -> None:
    assert len(CORE_MODULES) > 20
    assert {"context.py", "wiring.py", "token_exchange.py", "subject_tokens.py"} <= {p.name for p in CORE_MODULES}
    assert len(CORE_COMPANIONS) >= 2
    assert {"jose", "config", "store"} <= {p.relative_to(PACKAGE).parts[0] for p in LOWER_MODULES}


@pytest.mark.parametrize("path", CORE_MODULES + CORE_COMPANIONS, ids=relative(CORE_MODULES + CORE_COMPANIONS))
def test_core_module_imports_only_what_lies_below_it(path: Path) -> None:
    assert core_violations(path) == []


@pytest.mark.parametrize("path", LOWER_MODULES, ids=relative(LOWER_MODULES))
def test_lower_layers_import_no_web_no_sql_and_no_server(path: Path) -> None:
    assert lower_layer_violations(path) == []


def test_the_checks_flag_what_they_forbid(tmp_path: Path) -> None:
    core = tmp_path / "tokensmith" / "server" / "core"
    core.mkdir(parents=True)
    bad = core / "bad.py"
    bad.write_text(
        "from typing import TYPE_CHECKING\n"
        "import httpx\n"
        "from tokensmith import jose\n"
        "from tokensmith.server.core.context import ServerContext\n"
        "from tokensmith.server.http.runtime import Runtime\n"
        "from ..metrics import ServerMetrics\n"
        "if TYPE_CHECKING:\n"
        "    from starlette.requests import Request\n"
        "def later():\n"
        "    import sqlalchemy.ext.asyncio\n"
        "    from tokensmith.store import open_store\n",
        encoding="utf-8",
    )
    assert core_violations(bad, tmp_path) == [
        "sqlalchemy.ext.asyncio",
        "starlette.requests.Request",
        "tokensmith.server.http.runtime.Runtime",
        "tokensmith.server.metrics.ServerMetrics",
        "tokensmith.store.open_store",
    ]
    assert lower_layer_violations(bad, tmp_path) == [
        "sqlalchemy.ext.asyncio",
        "starlette.requests.Request",
        "tokensmith.server.core.context.ServerContext",
        "tokensmith.server.http.runtime.Runtime",
        "tokensmith.server.metrics.ServerMetrics",
    ]
