"""Tokens are shown decoded (header, claims, expiry) and never as the token string."""

from __future__ import annotations

import base64
import json
from datetime import UTC, datetime

import pytest

from tokensmith.demo.pages import message_page
from tokensmith.demo.token_view import NotAJWT, TokenView, view_token


def _segment(value: dict[str, object]) -> str:
    return base64.urlsafe_b64encode(json.dumps(value).encode()).rstrip(b"=").decode()


def test_view_token_decodes_header_and_claims() -> None:
    token = f"{_segment({'alg': 'ES256', 'typ': 'at+jwt'})}.{_segment({'sub': 'baeldung', 'exp': 4102444800})}.sig"
    view = view_token(token)
    assert view.header["typ"] == "at+jwt"
    assert view.claims["sub"] == "baeldung"
    assert view.expires_at == datetime(2100, 1, 1, tzinfo=UTC)
    assert "in " in view.expiry_text()


@pytest.mark.parametrize("bad", ["", "a.b", "not-base64!.x.y", f"{_segment({'a': 1})}.bnVsbA.sig"])
def test_view_token_refuses_what_is_not_a_jwt(bad: str) -> None:
    with pytest.raises(NotAJWT):
        view_token(bad)


def test_from_dict_refuses_malformed_json() -> None:
    assert TokenView.from_dict({"header": {}, "claims": []}) is None
    assert TokenView.from_dict("x") is None


def test_message_page_escapes_what_the_resource_server_says() -> None:
    view = TokenView(header={"alg": "ES256"}, claims={"sub": "<b>x</b>", "aud": "user-service"})
    other = TokenView(header={"alg": "ES256"}, claims={"sub": "<b>x</b>", "aud": "message-service"})
    html = message_page("<script>alert(1)</script>", view, other, "impersonation", "csrf")
    assert "<script>alert(1)</script>" not in html
    assert "&lt;script&gt;alert(1)&lt;/script&gt;" in html
    assert "<b>x</b>" not in html
    assert "Token Exchange Client!" in html
    assert "The resource server: <strong" in html
