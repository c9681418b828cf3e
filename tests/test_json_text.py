"""json_dumper must write exactly what json.dumps writes with the same arguments."""

from __future__ import annotations

import json
import math
from typing import Any

import pytest

from tokensmith.json_text import json_dumper

VALUES: list[Any] = [
    {"iss": "http://127.0.0.1:9001", "aud": ["a", "b"], "exp": 1_800_000_000, "scope": "message.read"},
    {"sub": "ålice ✓ \u2028", "act": {"sub": "svc", "act": {"sub": "x"}}, "n": None, "t": True, "f": 0.1},
    {"big": 2**70, "neg": -1, "empty": {}, "list": [], "quote": '"\\/', "ctrl": "\x00\x1f"},
    "just a string",
    [1, "two", 3.5, None],
]


@pytest.mark.parametrize("value", VALUES)
@pytest.mark.parametrize("ensure_ascii", [True, False])
@pytest.mark.parametrize("compact", [True, False])
def test_same_text_as_json_dumps(value: Any, ensure_ascii: bool, compact: bool) -> None:
    separators = (",", ":") if compact else (", ", ": ")
    expected = json.dumps(value, ensure_ascii=ensure_ascii, separators=separators)
    assert json_dumper(ensure_ascii=ensure_ascii, compact=compact)(value) == expected


def test_nan_is_refused_when_asked_and_written_otherwise() -> None:
    with pytest.raises(ValueError, match="JSON compliant"):
        json_dumper(allow_nan=False)({"x": math.nan})
    assert json_dumper()({"x": math.inf}) == json.dumps({"x": math.inf})


def test_values_json_cannot_encode_are_refused() -> None:
    with pytest.raises(TypeError):
        json_dumper()({"when": object()})
