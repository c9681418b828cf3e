from __future__ import annotations

import pytest

from tokensmith.resource import InsufficientScope, InvalidToken, MissingToken, bearer_token
from tokensmith.resource.principal import Principal, scopes_of


def test_challenges_follow_rfc6750() -> None:
    assert MissingToken("x").www_authenticate() == "Bearer"
    assert MissingToken("x").www_authenticate("api") == 'Bearer realm="api"'
    assert InvalidToken("the token has expired").www_authenticate() == (
        'Bearer error="invalid_token", error_description="the token has expired"'
    )
    error = InsufficientScope(["message.read"])
    assert error.status_code == 403
    assert error.www_authenticate() == (
        'Bearer error="insufficient_scope", error_description="this resource needs scope message.read", '
        'scope="message.read"'
    )


def test_descriptions_cannot_break_out_of_the_header() -> None:
    error = InvalidToken('bad "quote"\r\nSet-Cookie: x=1\\ é')
    assert (
        error.www_authenticate()
        == 'Bearer error="invalid_token", error_description="bad \'quote\'??Set-Cookie: x=1? ?"'
    )
    # The JSON body carries the same text: RFC 6750 3's characters only.
    assert error.to_dict()["error_description"] == "bad 'quote'??Set-Cookie: x=1? ?"


@pytest.mark.parametrize(
    ("value", "expected"),
    [("Bearer abc.def-_~+/==", "abc.def-_~+/=="), ("bearer   tok", "tok"), ("BEARER tok ", "tok")],
)
def test_bearer_token_parsing(value: str, expected: str) -> None:
    assert bearer_token(value) == expected


@pytest.mark.parametrize("value", [None, "", "Basic abc", "Token abc"])
def test_no_bearer_credential_is_missing(value: str | None) -> None:
    with pytest.raises(MissingToken):
        bearer_token(value)


@pytest.mark.parametrize("value", ["Bearer", "Bearer a b", "Bearer a,b", 'Bearer "x"'])
def test_malformed_bearer_credentials_are_invalid(value: str) -> None:
    with pytest.raises(InvalidToken):
        bearer_token(value)


def test_scopes_from_string_array_or_scp() -> None:
    assert scopes_of({"scope": "a b  c"}) == {"a", "b", "c"}
    assert scopes_of({"scope": ["a", "b", 3]}) == {"a", "b"}
    assert scopes_of({"scp": ["x"]}) == {"x"}
    assert scopes_of({"scope": 7}) == frozenset()


def test_principal_requires_scopes_and_caps_the_act_chain() -> None:
    act: dict[str, object] = {"sub": "leaf"}
    for n in range(100):
        act = {"sub": f"actor-{n}", "act": act}
    principal = Principal.from_claims({"sub": "u", "azp": "web", "scope": "a b", "aud": ["x"], "act": act}, "t")
    assert principal.client_id == "web"
    assert len(principal.act) == 16
    assert principal.act[0].subject == "actor-99"
    principal.require_scopes("a", "b")
    with pytest.raises(InsufficientScope) as caught:
        principal.require_scopes("a", "c")
    assert caught.value.scope == ("a", "c")
