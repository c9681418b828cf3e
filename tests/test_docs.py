"""The YAML in the docs and examples is checked by the same loaders users run, so it cannot drift from the models.

A block preceded by ``<!-- fragment -->`` is not checked; one preceded by ``<!-- under clients.NAME -->`` is a
``token-exchange`` (or other client-level) fragment, checked inside that client of the page's first full example.
"""

from __future__ import annotations

import copy
import re
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest
import yaml

from tokensmith.client import load_client_properties
from tokensmith.config import load_config
from tokensmith.resource import load_resource_server_settings

ROOT = Path(__file__).resolve().parents[1]
DOCS_WITH_SERVER_YAML = ("docs/exchange-policy.md", "docs/interop.md", "docs/libraries.md")
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
