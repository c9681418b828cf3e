"""The docs are checked against what they describe, so they cannot drift from it.

* The YAML in the docs and examples is checked by the same loaders users run. A block preceded by
  ``<!-- fragment -->`` is not checked; one preceded by ``<!-- under clients.NAME -->`` is a ``token-exchange`` (or
  other client-level) fragment, checked inside that client of the page's first full example.
* Every relative link in README.md and docs/*.md names a file that exists.
* The benchmark figures in README.md and docs/performance.md are those of bench/results/latest.json: after a
  `make bench`, the failing test prints the lines to paste.
"""

from __future__ import annotations

import copy
import json
import re
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest
import yaml

from tokensmith.client import load_client_properties
from tokensmith.config import load_config
from tokensmith.resource import load_resource_server_settings

ROOT = Path(__file__).resolve().parents[1]
DOCS_WITH_SERVER_YAML = (
    "docs/exchange-policy.md",
    "docs/interop.md",
    "docs/libraries.md",
    "docs/workload-federation.md",
)
_BLOCK = re.compile(r"(?:<!-- (?P<marker>[^>]*?) -->\n)?```yaml\n(?P<body>.*?)```", re.DOTALL)


@dataclass(frozen=True)
class Block:
    source: str
    marker: str | None
    body: str

    @property
    def data(self) -> dict[str, Any]:
        loaded = yaml.safe_load(self.body)
        assert isinstance(loaded, dict), f"{self.source}: a YAML block must be a mapping"
        return loaded


def yaml_blocks(relative: str) -> list[Block]:
    text = (ROOT / relative).read_text(encoding="utf-8")
    return [
        Block(f"{relative} block {number}", match["marker"], match["body"])
        for number, match in enumerate(_BLOCK.finditer(text), start=1)
    ]


def is_library_settings(data: dict[str, Any]) -> bool:
    """Spring's client / resource-server layout, read by tokensmith.client and tokensmith.resource."""
    oauth2 = data.get("spring", {}).get("security", {}).get("oauth2", {})
    return "authorizationserver" not in oauth2 and ("client" in oauth2 or "resourceserver" in oauth2)


def check(data: dict[str, Any], tmp_path: Path) -> None:
    if is_library_settings(data):
        oauth2 = data["spring"]["security"]["oauth2"]
        if "client" in oauth2:
            assert load_client_properties(data).registrations()
        if "resourceserver" in oauth2:
            assert load_resource_server_settings(data).jwt is not None
        return
    path = tmp_path / "config.yaml"
    path.write_text(yaml.safe_dump(data), encoding="utf-8")
    load_config(path, environ={})  # raises ConfigError naming the key that is wrong


def nested_under(marker: str, fragment: dict[str, Any], page: list[Block]) -> dict[str, Any]:
    """The page's first full example with ``fragment`` merged into the client the marker names."""
    name = marker.removeprefix("under clients.").strip()
    for block in page:
        if block.marker is None and name in block.data.get("clients", {}):
            full = copy.deepcopy(block.data)
            full["clients"][name].update(fragment)
            return full
    raise AssertionError(f"no full example with client {name!r} to place the fragment in")


# Blocks marked `<!-- fragment -->` are deliberately incomplete and not checked.
DOC_BLOCKS = [
    (relative, block)
    for relative in DOCS_WITH_SERVER_YAML
    for block in yaml_blocks(relative)
    if block.marker != "fragment"
]
EXAMPLES = sorted((ROOT / "examples").glob("*.yaml"))


def test_the_docs_have_yaml_blocks() -> None:
    assert len([b for _, b in DOC_BLOCKS if b.source.startswith("docs/exchange-policy.md")]) >= 7
    assert EXAMPLES


@pytest.mark.parametrize(("relative", "block"), DOC_BLOCKS, ids=[block.source for _, block in DOC_BLOCKS])
def test_doc_yaml_block_is_valid(relative: str, block: Block, tmp_path: Path) -> None:
    data = block.data
    if block.marker is not None:
        assert block.marker.startswith("under clients."), f"{block.source}: unknown marker {block.marker!r}"
        data = nested_under(block.marker, data, yaml_blocks(relative))
    check(data, tmp_path)


@pytest.mark.parametrize("path", EXAMPLES, ids=[path.name for path in EXAMPLES])
def test_example_yaml_is_valid(path: Path, tmp_path: Path) -> None:
    data = yaml.safe_load(path.read_text(encoding="utf-8"))
    check(data, tmp_path)


MARKDOWN = [ROOT / "README.md", *sorted((ROOT / "docs").glob("*.md"))]
_LINK = re.compile(r"!?\[[^\]]*\]\(([^)\s]+)\)")
_SCHEME = re.compile(r"[a-z][a-z0-9+.-]*:")


@pytest.mark.parametrize("page", MARKDOWN, ids=[str(page.relative_to(ROOT)) for page in MARKDOWN])
def test_relative_links_resolve(page: Path) -> None:
    targets = [target.split("#")[0] for target in _LINK.findall(page.read_text(encoding="utf-8"))]
    missing = [t for t in targets if t and not _SCHEME.match(t) and not (page.parent / t).exists()]
    assert not missing, f"{page.relative_to(ROOT)} links to files that do not exist: {missing}"


def _ratio(value: float) -> str:
    """As bench/report.py shows a target: two decimals, three for a miss that two would round up to its goal."""
    return f"{value:.2f}x" if round(value, 2) == value else f"{value:.3f}x"


def _processes(workers: int) -> str:
    return f"{workers} process" if workers == 1 else f"{workers} processes"


def latest_run_line(latest: dict[str, Any]) -> str:
    when, machine = latest["generated_at"], latest["machine"]
    return f"{when[:10]} {when[11:16]} UTC on {machine['cpu']}, {machine['cores']} cores"


def readme_rows(latest: dict[str, Any]) -> list[str]:
    """README's table: ES256, requests/s (p99) of each system, tokensmith's ratios to the two others."""
    http = {(row["scenario"], row["system"], row["alg"], row["workers"]): row for row in latest["http"]}
    rows = []
    for scenario in ("token-exchange", "client-credentials"):
        for workers in (1, 2):
            mine, ceiling, node = (
                http[(scenario, system, "ES256", workers)]
                for system in ("tokensmith", "python-ceiling", "oidc-provider")
            )
            cells = " | ".join(f"{row['rps']:.0f} ({row['p99_ms']:.1f} ms)" for row in (mine, ceiling, node))
            ratios = f"{mine['rps'] / ceiling['rps']:.2f}x / {mine['rps'] / node['rps']:.2f}x"
            rows.append(f"| {scenario.replace('-', ' ')}, {_processes(workers)} | {cells} | {ratios} |")
    ops = {(row["alg"], row["implementation"]): row["ops"] for row in latest["validation"]}
    mine, bare = ops[("ES256", "tokensmith")], ops[("ES256", "joserfc (bare)")]
    rows.append(
        f"| bearer validation in process, validations/s | {mine:.0f} | {bare:.0f} (bare joserfc) | | {mine / bare:.2f}x |"
    )
    return rows


def performance_rows(latest: dict[str, Any]) -> list[str]:
    """docs/performance.md's table: each target's measured value per algorithm and process count."""
    values = {target["target"]: target["value"] for target in latest["targets"]}
    configurations = [(alg, workers) for alg in ("ES256", "RS256") for workers in (1, 2)]
    targets: list[tuple[str, str, Callable[[Any], str]]] = [
        ("token exchange vs the ceiling", "exchange vs ceiling", _ratio),
        ("token exchange vs oidc-provider", "exchange vs oidc-provider", _ratio),
        ("token exchange p99", "exchange p99", lambda value: f"{value:.1f} ms"),
        ("token exchange errors", "exchange errors", str),
        ("client credentials vs oidc-provider", "client credentials vs oidc-provider", _ratio),
    ]
    rows = []
    for label, name, shown in targets:
        cells = [values.get(f"{name} ({alg}, {_processes(workers)})") for alg, workers in configurations]
        rows.append(f"| {label} | " + " | ".join("" if v is None else shown(v) for v in cells) + " |")
    validation = [values.get(f"validation vs bare joserfc ({alg})") if w == 1 else None for alg, w in configurations]
    rows.append(
        "| validation vs bare joserfc | " + " | ".join("" if v is None else _ratio(v) for v in validation) + " |"
    )
    return rows


@pytest.mark.parametrize(
    ("relative", "rows"),
    [("README.md", readme_rows), ("docs/performance.md", performance_rows)],
    ids=["README", "perf"],
)
def test_benchmark_figures_are_the_latest_run(relative: str, rows: Callable[[dict[str, Any]], list[str]]) -> None:
    latest = json.loads((ROOT / "bench" / "results" / "latest.json").read_text(encoding="utf-8"))
    text = re.sub(r"\s+", " ", (ROOT / relative).read_text(encoding="utf-8"))
    expected = [re.sub(r"\s+", " ", line) for line in (latest_run_line(latest), *rows(latest))]
    missing = [line for line in expected if line not in text]
    assert not missing, f"{relative} does not show bench/results/latest.json; paste:\n" + "\n".join(expected)
