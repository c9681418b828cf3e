"""The token endpoint's form decoder takes a shortcut past ``urllib.parse.parse_qsl``: it must give the same pairs
(and fail the same way) on every input."""

from __future__ import annotations

import random
from collections.abc import Callable
from urllib.parse import parse_qsl

import pytest

from tokensmith.server.endpoints.forms import _form_pairs, parse_form


def _outcome(parse: Callable[[str], list[tuple[str, str]]], text: str) -> object:
    try:
        return parse(text)
    except (UnicodeDecodeError, ValueError) as exc:
        return type(exc)


@pytest.mark.parametrize("seed", range(4))
def test_random_forms_decode_as_parse_qsl_does(seed: int) -> None:
    rng = random.Random(seed)
    alphabet = "ab=&%+2F3A0ZzC3xFEé "

    def reference(text: str) -> list[tuple[str, str]]:
        return parse_qsl(text, keep_blank_values=True, strict_parsing=False, errors="strict")

    for _ in range(20_000):
        text = "".join(rng.choice(alphabet) for _ in range(rng.randint(0, 14)))
        assert _outcome(lambda form: _form_pairs(form.split("&")), text) == _outcome(reference, text), text


@pytest.mark.parametrize(
    ("body", "expected"),
    [
        (b"grant_type=client_credentials", {"grant_type": ["client_credentials"]}),
        (b"scope=a+b&x=%2F%3A", {"scope": ["a b"], "x": ["/:"]}),
        (b"flag&empty=&&=v", {"flag": [""], "empty": [""], "": ["v"]}),
        (b"t=abc.def_ghi-jkl", {"t": ["abc.def_ghi-jkl"]}),
        (b"n%C3%A9=%C3%A9", {"né": ["é"]}),
    ],
)
def test_known_forms(body: bytes, expected: dict[str, list[str]]) -> None:
    assert parse_form(body) == expected


@pytest.mark.parametrize("body", [b"a=%ff", b"a=%C3", b"\xff=1"])
def test_undecodable_forms_are_invalid_request(body: bytes) -> None:
    with pytest.raises(Exception, match="not valid UTF-8"):
        parse_form(body)
