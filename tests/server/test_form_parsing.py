"""The form decoder: UTF-8 form encoding, repeated parameters refused, a bounded number of fields."""

from __future__ import annotations

import pytest

from tokensmith.errors import OAuthError
from tokensmith.server.http.forms import MAX_FORM_FIELDS, parse_form


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


def test_a_repeated_parameter_is_invalid_request() -> None:
    with pytest.raises(OAuthError, match="more than once"):
        parse_form(b"grant_type=a&grant_type=b")


def test_repeatable_parameters_keep_every_value() -> None:
    assert parse_form(b"audience=a&audience=b")["audience"] == ["a", "b"]


def test_too_many_fields_are_refused() -> None:
    assert len(parse_form(b"&".join(b"f%d=1" % i for i in range(MAX_FORM_FIELDS)))) == MAX_FORM_FIELDS
    with pytest.raises(OAuthError, match="more than 100 fields"):
        parse_form(b"&".join(b"f%d=1" % i for i in range(MAX_FORM_FIELDS + 1)))
