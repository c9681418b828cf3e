"""Odd input that used to reach an unhandled exception (a 500) instead of an RFC 6749 error."""

from __future__ import annotations

from collections.abc import AsyncIterator

import httpx
import pytest
from tests.server.browser import Browser, query_of, web_authorize_params

from tokensmith.errors import OAuthError
from tokensmith.server.http.forms import read_body


@pytest.mark.parametrize("max_age", ["\u00b2", "\u0663", "\uff11\uff12", "1" * 40, "-1", "1.5"])
async def test_max_age_must_be_ascii_digits(browser: Browser, max_age: str) -> None:
    await browser.code_for()  # signed in, so the request gets as far as max_age
    response = await browser.authorize(web_authorize_params(max_age=max_age))
    assert response.status_code == 302, response.text[:300]
    query = query_of(response.headers["location"])
    assert query["error"] == "invalid_request"
    assert "max_age" in query["error_description"]
    assert query["state"] == "xyz-state"


class _Request:
    """Just enough of a Starlette request for read_body: a header and an empty body."""

    def __init__(self, content_length: str) -> None:
        self.headers = {"content-length": content_length}

    async def stream(self) -> AsyncIterator[bytes]:
        yield b""


@pytest.mark.parametrize("content_length", ["\u00b2", "\u0663", "+5", " 5"])
async def test_a_content_length_of_non_ascii_digits_is_invalid_request(content_length: str) -> None:
    with pytest.raises(OAuthError) as raised:
        await read_body(_Request(content_length), 1024)  # type: ignore[arg-type]
    assert raised.value.error == "invalid_request"


async def test_unicode_and_null_bytes_in_the_token_request(http: httpx.AsyncClient) -> None:
    for body in ("grant_type=client_credentials\u2028&scope=\u00e9\u0000", "grant_type=\ud7ff&client_id=\u0000"):
        response = await http.post(
            "/oauth2/token",
            content=body.encode("utf-8"),
            headers={"Content-Type": "application/x-www-form-urlencoded"},
        )
        assert 400 <= response.status_code < 500
        assert {"error", "error_description"} <= response.json().keys()
        assert response.headers["cache-control"] == "no-store"
