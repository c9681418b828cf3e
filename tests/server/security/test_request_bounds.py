"""Bounded input: authorization request parameters (count, each value, total) and request headers.

Before the fix an authorization request could carry a 60 kB ``nonce`` (stored with the code and copied into
the ID token) or thousands of parameters (echoed into the consent form), and a request could carry a 10 MB
header or 100 000 headers, all of which the server read and processed.
"""

from __future__ import annotations

import asyncio
from urllib.parse import urlsplit

import httpx
import pytest
from tests.server.browser import Browser, web_authorize_params

from tokensmith.server.core.authorization import MAX_PARAMETER_CHARS, MAX_PARAMETERS, MAX_REQUEST_CHARS
from tokensmith.server.http.forms import MAX_FORM_FIELDS, parse_form
from tokensmith.server.http.request_limits import MAX_HEADER_BYTES, MAX_HEADERS


def _refused_on_a_page(response: httpx.Response) -> None:
    # Shown to the user, never redirected: a huge value is not sent back to the client either.
    assert response.status_code == 400, response.text[:300]
    assert "location" not in response.headers
    assert "invalid_request" in response.text


@pytest.mark.parametrize("name", ["nonce", "state", "scope", "login_hint"])
async def test_an_oversized_parameter_is_refused(browser: Browser, name: str) -> None:
    response = await browser.authorize(web_authorize_params(**{name: "n" * (MAX_PARAMETER_CHARS + 1)}))
    _refused_on_a_page(response)


async def test_too_many_parameters_are_refused(browser: Browser) -> None:
    extra = {f"x{i}": "1" for i in range(MAX_PARAMETERS)}
    _refused_on_a_page(await browser.authorize({**web_authorize_params(), **extra}))


async def test_too_large_a_request_is_refused(http: httpx.AsyncClient) -> None:
    values = {f"x{i}": "v" * 1000 for i in range(MAX_REQUEST_CHARS // 1000 + 1)}
    response = await http.post("/oauth2/authorize", data={**web_authorize_params(), **values})
    _refused_on_a_page(response)


async def test_a_large_but_allowed_request_survives_the_login_round_trip(browser: Browser) -> None:
    # Values that need escaping grow at each step (authorize URL, login `next`, login URL): still honoured.
    state = "/:&=" * ((MAX_PARAMETER_CHARS - 100) // 4)
    query = await browser.code_for(web_authorize_params(state=state))
    assert query["state"] == state
    assert "code" in query


async def _raw(base_url: str, request: bytes) -> bytes:
    parts = urlsplit(base_url)
    reader, writer = await asyncio.open_connection(parts.hostname, parts.port)
    try:
        writer.write(request)
        await writer.drain()
        return await asyncio.wait_for(reader.read(4096), 10)
    finally:
        writer.close()


async def test_an_oversized_header_is_refused(base_url: str) -> None:
    big = b"x" * (MAX_HEADER_BYTES + 1)
    answer = await _raw(base_url, b"GET /health HTTP/1.1\r\nHost: a\r\nX-Big: " + big + b"\r\n\r\n")
    assert answer.startswith(b"HTTP/1.1 431 "), answer[:200]
    assert b'"error":"invalid_request"' in answer
    assert b"error_description" in answer


async def test_too_many_headers_are_refused(base_url: str) -> None:
    headers = b"".join(b"X-%d: 1\r\n" % i for i in range(MAX_HEADERS + 1))
    answer = await _raw(
        base_url, b"POST /oauth2/token HTTP/1.1\r\nHost: a\r\n" + headers + b"Content-Length: 0\r\n\r\n"
    )
    assert answer.startswith(b"HTTP/1.1 431 "), answer[:200]
    assert b"no-store" in answer


async def test_ordinary_requests_pass_the_header_limits(http: httpx.AsyncClient) -> None:
    response = await http.get("/health", headers={"Cookie": "a=" + "b" * 4000, "User-Agent": "x" * 500})
    assert response.status_code == 200


@pytest.mark.parametrize("path", ["/oauth2/token", "/oauth2/introspect", "/oauth2/revoke", "/login", "/connect/logout"])
async def test_a_form_with_too_many_fields_is_refused(http: httpx.AsyncClient, path: str) -> None:
    body = "&".join(f"f{i}=1" for i in range(MAX_FORM_FIELDS + 1))
    response = await http.post(path, content=body, headers={"Content-Type": "application/x-www-form-urlencoded"})
    assert response.status_code == 400
    assert "fields" in response.text


async def test_a_token_exchange_with_many_audiences_still_parses() -> None:
    params = parse_form("&".join(["grant_type=x", *(f"audience=a{i}" for i in range(MAX_FORM_FIELDS - 1))]).encode())
    assert len(params["audience"]) == MAX_FORM_FIELDS - 1
