"""``@frozen`` value types: a frozen dataclass for the type checker, a plain slotted one at run time."""

from __future__ import annotations

import copy
import dataclasses
import pickle
import subprocess
import sys
import textwrap
from pathlib import Path

import pytest

from tokensmith.frozen import frozen
from tokensmith.store.records import AuditEvent, IssuedTokenRecord


@frozen
class Point:
    x: int
    y: int = 0
    tags: tuple[str, ...] = dataclasses.field(default_factory=tuple)


def test_equality_and_hash_by_field_values_like_a_frozen_dataclass() -> None:
    assert Point(1, 2) == Point(1, 2)
    assert Point(1, 2) != Point(1, 3)
    assert hash(Point(1, 2)) == hash(Point(1, 2))
    assert len({Point(1, 2), Point(1, 2), Point(2, 1)}) == 2


def test_slotted_with_defaults_and_replace() -> None:
    point = Point(1)
    assert not hasattr(point, "__dict__")
    assert (point.y, point.tags) == (0, ())
    moved = dataclasses.replace(point, y=5)
    assert (moved.x, moved.y, point.y) == (1, 5, 0)
    assert [f.name for f in dataclasses.fields(Point)] == ["x", "y", "tags"]


@pytest.mark.parametrize("protocol", range(pickle.HIGHEST_PROTOCOL + 1))
def test_pickled_and_copied_like_a_frozen_dataclass(protocol: int) -> None:
    point = Point(3, 4, ("a", "b"))
    assert pickle.loads(pickle.dumps(point, protocol)) == point
    assert copy.copy(point) == point
    assert copy.deepcopy(point) == point


def test_a_field_holding_an_unhashable_value_makes_the_instance_unhashable_as_when_frozen() -> None:
    @frozen
    class Holder:
        items: list[int]

    with pytest.raises(TypeError):
        hash(Holder([1]))


def test_the_type_checker_rejects_assigning_a_field(tmp_path: Path) -> None:
    # The guarantee @frozen keeps is a static one: mypy --strict (run on src/ by `make test`) must refuse this.
    source = tmp_path / "mutates.py"
    source.write_text(
        textwrap.dedent(
            """
            from tokensmith.frozen import frozen

            @frozen
            class Token:
                jti: str

            token = Token("a")
            token.jti = "b"
            Token(jti=1)
            """
        )
    )
    # In a process of its own: mypy's main raises the interpreter's recursion limit for good, which would change
    # what other tests see (the JSON parser's nesting limit follows it).
    checked = subprocess.run(
        [
            sys.executable,
            "-m",
            "mypy",
            "--strict",
            "--no-incremental",
            "--cache-dir",
            str(tmp_path / "cache"),
            str(source),
        ],
        capture_output=True,
        text=True,
        timeout=120,
        check=False,
    )
    assert checked.returncode == 1, checked.stdout + checked.stderr
    assert 'Property "jti" defined in "Token" is read-only' in checked.stdout
    assert 'Argument "jti" to "Token" has incompatible type "int"; expected "str"' in checked.stdout


@pytest.mark.parametrize("record_type", [IssuedTokenRecord, AuditEvent])
def test_hot_path_records_are_frozen_value_types(record_type: type) -> None:
    # Built on every token request: @frozen, not @dataclass(frozen=True) (whose __init__ pays object.__setattr__
    # per field); still slotted and hashable.
    assert dataclasses.is_dataclass(record_type)
    assert "__slots__" in vars(record_type)
    assert record_type.__setattr__ is object.__setattr__
    assert vars(record_type).get("__hash__") is not None
