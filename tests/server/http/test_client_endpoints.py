"""The token, introspection and revocation endpoints are ordinary Starlette routes: 405 with Allow, parameters only in
the body, a bounded body read whole, RFC 6749 error JSON, 401 with WWW-Authenticate, a logged generic 500."""

from __future__ import annotations

from collections.abc import AsyncIterator

import httpx
import pytest
from tests.server.configs import SERVICE_CLIENT, SERVICE_SECRET

from tokensmith.server.core.grants.client_credentials import ClientCredentialsGrant

CLIENT_PATHS = ["/oauth2/token", "/oauth2/introspect", "/oauth2/revoke"]
FORM = "application/x-www-form-urlencoded"


@pytest.mark.parametrize("path", CLIENT_PATHS)
@pytest.mark.parametrize("method", ["GET", "PUT", "DELETE"])
async def test_other_methods_are_405_with_allow(http: httpx.AsyncClient, path: str, method: str) -> None:
    response = await http.request(method, path)
    assert response.status_code == 405
    assert response.headers["allow"] == "POST"
    assert response.json()["error"] == "invalid_request"
    assert response.headers["cache-control"] == "no-store"


@pytest.mark.parametrize("path", CLIENT_PATHS)
async def test_parameters_in_the_query_string_are_refused(http: httpx.AsyncClient, path: str) -> None:
    response = await http.post(path + "?token=abc", content="token=abc", headers={"Content-Type": FORM})
    assert response.status_code == 400
    assert "query string" in response.json()["error_description"]
    assert response.headers["cache-control"] == "no-store"


async def test_a_trailing_slash_is_not_the_token_endpoint(http: httpx.AsyncClient) -> None:
    response = await http.post(
        "/oauth2/token/x", content="grant_type=client_credentials", headers={"Content-Type": FORM}
    )
    assert response.status_code == 404
    assert response.json()["error"] == "invalid_request"


async def _chunks(*parts: bytes) -> AsyncIterator[bytes]:
    for part in parts:
        yield part


async def test_a_chunked_body_is_read_whole(http: httpx.AsyncClient) -> None:
    response = await http.post(
        "/oauth2/token",
        content=_chunks(b"grant_type=client_cre", b"dentials&scope=reports.read"),
        headers={"Content-Type": FORM},
        auth=(SERVICE_CLIENT, SERVICE_SECRET),
    )
    assert response.status_code == 200, response.text
    assert response.json()["token_type"] == "Bearer"
    assert response.headers["cache-control"] == "no-store"


async def test_a_chunked_body_growing_past_the_limit_is_413(http: httpx.AsyncClient) -> None:
    response = await http.post(
        "/oauth2/token", content=_chunks(*[b"a=" + b"x" * 40_000] * 3), headers={"Content-Type": FORM}
    )
    assert response.status_code == 413
    assert response.json()["error"] == "invalid_request"


async def test_a_form_of_another_type_is_refused(http: httpx.AsyncClient) -> None:
    response = await http.post("/oauth2/token", json={"grant_type": "client_credentials"})
    assert response.status_code == 400
    assert FORM in response.json()["error_description"]


async def test_an_unknown_client_is_401_with_www_authenticate(http: httpx.AsyncClient) -> None:
    response = await http.post(
        "/oauth2/introspect", data={"token": "x"}, auth=("nobody", "wrong"), headers={"Content-Type": FORM}
    )
    assert response.status_code == 401
    assert response.json()["error"] == "invalid_client"
    assert response.headers["www-authenticate"].startswith("Basic ")
    assert response.headers["pragma"] == "no-cache"


async def test_a_revocation_answers_200_with_an_empty_body(http: httpx.AsyncClient) -> None:
    response = await http.post("/oauth2/revoke", data={"token": "unknown"}, auth=(SERVICE_CLIENT, SERVICE_SECRET))
    assert (response.status_code, response.content, response.headers["content-length"]) == (200, b"", "0")
    assert "content-type" not in response.headers
    assert response.headers["cache-control"] == "no-store"


async def test_an_unexpected_exception_is_a_logged_500_without_details(
    http: httpx.AsyncClient, monkeypatch: pytest.MonkeyPatch, caplog: pytest.LogCaptureFixture
) -> None:
    async def boom(*args: object) -> None:
        raise RuntimeError("secret internal detail")

    monkeypatch.setattr(ClientCredentialsGrant, "__call__", boom)
    response = await http.post(
        "/oauth2/token", data={"grant_type": "client_credentials"}, auth=(SERVICE_CLIENT, SERVICE_SECRET)
    )
    assert response.status_code == 500
    assert response.json()["error"] == "server_error"
    assert "secret internal detail" not in response.text
    assert response.headers["cache-control"] == "no-store"
    assert any("unhandled error on POST /oauth2/token" in record.getMessage() for record in caplog.records)
