"""No import cycles in ``src/tokensmith``.

Every import counts, wherever it is written: at module level, inside a function, or under ``if TYPE_CHECKING:``
(a lazy import still ties the two modules together). Relative imports are resolved, and ``from package import name``
counts as importing the submodule when ``name`` is one.
"""

from __future__ import annotations

import ast
from collections import deque
from collections.abc import Mapping, Set
from pathlib import Path

SRC = Path(__file__).resolve().parents[1] / "src"

Graph = Mapping[str, Set[str]]


def module_files(root: Path, package: str) -> dict[str, Path]:
    """Dotted module name -> file, for every module of ``package`` under ``root``."""
    modules: dict[str, Path] = {}
    for path in sorted((root / package).rglob("*.py")):
        parts = list(path.relative_to(root).with_suffix("").parts)
        if parts[-1] == "__init__":
            parts.pop()
        modules[".".join(parts)] = path
    return modules


def imported_modules(name: str, path: Path, modules: Set[str]) -> set[str]:
    """The modules of ``modules`` that module ``name`` (its source at ``path``) imports, anywhere in the file."""
    package = name if path.name == "__init__.py" else name.rpartition(".")[0]
    found: set[str] = set()
    for node in ast.walk(ast.parse(path.read_text(encoding="utf-8"), str(path))):
        if isinstance(node, ast.Import):
            found.update(alias.name for alias in node.names)
        elif isinstance(node, ast.ImportFrom):
            if node.level:
                base = package.rsplit(".", node.level - 1)[0] if node.level > 1 else package
                base = f"{base}.{node.module}" if node.module else base
            else:
                base = node.module or ""
            for alias in node.names:
                submodule = f"{base}.{alias.name}"
                found.add(submodule if submodule in modules else base)
    return {module for module in found if module in modules and module != name}


def import_graph(root: Path, package: str) -> dict[str, set[str]]:
    files = module_files(root, package)
    return {name: imported_modules(name, path, files.keys()) for name, path in files.items()}


def cycles(graph: Graph) -> list[frozenset[str]]:
    """The strongly connected components of more than one module (Tarjan), i.e. the modules that import each other."""
    index: dict[str, int] = {}
    low: dict[str, int] = {}
    stack: list[str] = []
    on_stack: set[str] = set()
    found: list[frozenset[str]] = []

    def visit(node: str) -> None:
        index[node] = low[node] = len(index)
        stack.append(node)
        on_stack.add(node)
        for target in sorted(graph.get(node, ())):
            if target not in index:
                visit(target)
                low[node] = min(low[node], low[target])
            elif target in on_stack:
                low[node] = min(low[node], index[target])
        if low[node] == index[node]:
            component = set()
            while True:
                member = stack.pop()
                on_stack.discard(member)
                component.add(member)
                if member == node:
                    break
            if len(component) > 1:
                found.append(frozenset(component))

    for node in sorted(graph):
        if node not in index:
            visit(node)
    return found


def cycle_path(graph: Graph, component: Set[str]) -> list[str]:
    """One shortest cycle through the component's first module, e.g. ``[a, b, a]``, to name in a failure."""
    start = min(component)
    came_from: dict[str, str] = {}
    queue = deque([start])
    while queue:
        node = queue.popleft()
        for target in sorted(graph[node] & component):
            if target == start:
                path = [node]
                while path[-1] != start:
                    path.append(came_from[path[-1]])
                return [*reversed(path), start]
            if target not in came_from:
                came_from[target] = node
                queue.append(target)
    raise ValueError(f"{sorted(component)} is not a cycle")


def described(graph: Graph, component: Set[str]) -> str:
    return f"{' -> '.join(cycle_path(graph, component))} (cycle among {', '.join(sorted(component))})"


def test_no_import_cycles() -> None:
    graph = import_graph(SRC, "tokensmith")
    assert len(graph) > 50  # the whole package was read
    assert [described(graph, component) for component in cycles(graph)] == []


def test_cycles_are_found_in_a_synthetic_graph() -> None:
    graph = {"a": {"b"}, "b": {"c"}, "c": {"a", "d"}, "d": set(), "e": {"e", "a"}, "f": {"g"}, "g": {"f"}}
    found = cycles(graph)
    assert sorted(sorted(component) for component in found) == [["a", "b", "c"], ["f", "g"]]
    assert cycle_path(graph, frozenset({"a", "b", "c"})) == ["a", "b", "c", "a"]
    assert cycles({"a": {"b"}, "b": {"c"}, "c": set()}) == []


def test_every_kind_of_import_is_an_edge(tmp_path: Path) -> None:
    """Relative, function-level, ``TYPE_CHECKING`` and ``from package import submodule`` imports all count."""
    package = tmp_path / "pkg"
    (package / "sub").mkdir(parents=True)
    sources = {
        "__init__.py": "from pkg import a\n",
        "a.py": "from .sub import b\n",
        "sub/__init__.py": "",
        "sub/b.py": "def f():\n    from ..c import C\n    return C\n",
        "c.py": "from typing import TYPE_CHECKING\nif TYPE_CHECKING:\n    import pkg.a\nclass C: ...\n",
        "d.py": "from pkg.sub import nothing_here\nimport os\n",
    }
    for name, source in sources.items():
        (package / name).write_text(source, encoding="utf-8")
    graph = import_graph(tmp_path, "pkg")
    assert graph == {
        "pkg": {"pkg.a"},
        "pkg.a": {"pkg.sub.b"},
        "pkg.sub": set(),
        "pkg.sub.b": {"pkg.c"},
        "pkg.c": {"pkg.a"},
        "pkg.d": {"pkg.sub"},
    }
    assert [described(graph, c) for c in cycles(graph)] == [
        "pkg.a -> pkg.sub.b -> pkg.c -> pkg.a (cycle among pkg.a, pkg.c, pkg.sub.b)"
    ]
