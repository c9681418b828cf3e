"""The token, introspection and revocation endpoints are served without Starlette (endpoints/direct.py): what
Starlette did for them must still happen, over real HTTP and for the edge cases only a raw ASGI caller reaches."""

from __future__ import annotations

from collections.abc import Awaitable, Callable, MutableMapping
from types import SimpleNamespace
from typing import Any, cast

import httpx
import pytest

from tokensmith.errors import invalid_grant
from tokensmith.server.endpoints.direct import DirectEndpoint, FormPost, JsonReply
from tokensmith.server.endpoints.runtime import Runtime

DIRECT_PATHS = ["/oauth2/token", "/oauth2/introspect", "/oauth2/revoke"]
FORM = "application/x-www-form-urlencoded"


@pytest.mark.parametrize("path", DIRECT_PATHS)
@pytest.mark.parametrize("method", ["GET", "PUT", "DELETE"])
async def test_other_methods_are_405_with_allow(http: httpx.AsyncClient, path: str, method: str) -> None:
    response = await http.request(method, path)
    assert response.status_code == 405
    assert response.headers["allow"] == "POST"
    assert response.json()["error"] == "invalid_request"
    assert response.headers["cache-control"] == "no-store"


@pytest.mark.parametrize("path", DIRECT_PATHS)
async def test_parameters_in_the_query_string_are_refused(http: httpx.AsyncClient, path: str) -> None:
    response = await http.post(path + "?token=abc", content="token=abc", headers={"Content-Type": FORM})
    assert response.status_code == 400
    assert "query string" in response.json()["error_description"]


async def test_a_trailing_slash_is_not_the_token_endpoint(http: httpx.AsyncClient) -> None:
    # Only the exact path is answered directly; anything else goes through the router (404 JSON here).
    response = await http.post(
        "/oauth2/token/x", content="grant_type=client_credentials", headers={"Content-Type": FORM}
    )
    assert response.status_code == 404
    assert response.json()["error"] == "invalid_request"


# ---------------------------------------------------------------------------------------------- raw ASGI cases

Message = MutableMapping[str, Any]


def _runtime(limit: int = 1024) -> Runtime:
    return cast(Runtime, SimpleNamespace(ctx=SimpleNamespace(config=SimpleNamespace(max_request_bytes=limit))))


def _scope(headers: list[tuple[bytes, bytes]] | None = None) -> dict[str, Any]:
    return {
        "type": "http",
        "method": "POST",
        "path": "/oauth2/token",
        "query_string": b"",
        "headers": headers if headers is not None else [(b"content-type", FORM.encode())],
    }


async def _call(
    handler: Callable[[Runtime, FormPost], Awaitable[JsonReply]],
    messages: list[Message],
    *,
    scope: dict[str, Any] | None = None,
    limit: int = 1024,
) -> tuple[int, dict[bytes, bytes], bytes]:
    pending = list(messages)
    sent: list[Message] = []

    async def receive() -> Message:
        return pending.pop(0)

    async def send(message: Message) -> None:
        sent.append(message)

    await DirectEndpoint(handler, lambda: _runtime(limit))(scope or _scope(), receive, send)
    start, body = sent
    return start["status"], dict(start["headers"]), body["body"]


async def _echo(rt: Runtime, post: FormPost) -> JsonReply:
    return JsonReply({"params": dict(post.form.params), "authorization": post.authorization})


async def test_a_body_in_several_chunks_is_read_whole() -> None:
    chunks = [
        {"type": "http.request", "body": b"grant_type=client_cre", "more_body": True},
        {"type": "http.request", "body": b"dentials&scope=a+b", "more_body": False},
    ]
    status, headers, body = await _call(_echo, chunks)
    assert status == 200
    assert body == b'{"params":{"grant_type":["client_credentials"],"scope":["a b"]},"authorization":null}'
    assert headers[b"content-type"] == b"application/json"
    assert headers[b"content-length"] == str(len(body)).encode()


async def test_a_body_growing_past_the_limit_in_chunks_is_413() -> None:
    chunks = [{"type": "http.request", "body": b"a=" + b"x" * 600, "more_body": True}] * 2
    status, _, body = await _call(_echo, chunks, limit=1000)
    assert status == 413
    assert b'"error":"invalid_request"' in body


async def test_a_client_that_disconnects_mid_body_gets_an_error_not_a_crash() -> None:
    messages = [{"type": "http.request", "body": b"a=1", "more_body": True}, {"type": "http.disconnect"}]
    status, _, body = await _call(_echo, messages)
    assert status == 400
    assert b"disconnected" in body


async def test_the_first_authorization_header_is_the_one_read() -> None:
    headers = [(b"content-type", FORM.encode()), (b"authorization", b"Basic first"), (b"authorization", b"Basic 2")]
    _, _, body = await _call(_echo, [{"type": "http.request", "body": b""}], scope=_scope(headers))
    assert b'"authorization":"Basic first"' in body


@pytest.mark.parametrize("declared", [b"12x", b"\xc2\xb2", b"-1"])
async def test_a_malformed_content_length_is_refused(declared: bytes) -> None:
    headers = [(b"content-type", FORM.encode()), (b"content-length", declared)]
    status, _, body = await _call(_echo, [{"type": "http.request", "body": b""}], scope=_scope(headers))
    assert status == 400
    assert b"Content-Length" in body


async def test_an_oauth_error_keeps_its_status_and_headers() -> None:
    async def refuse(rt: Runtime, post: FormPost) -> JsonReply:
        error = invalid_grant("no such code")
        error.headers["WWW-Authenticate"] = "Basic"
        raise error

    status, headers, body = await _call(refuse, [{"type": "http.request", "body": b""}])
    assert (status, headers[b"www-authenticate"], headers[b"pragma"]) == (400, b"Basic", b"no-cache")
    assert body == b'{"error":"invalid_grant","error_description":"no such code"}'


async def test_an_unexpected_exception_is_a_logged_500_without_details(caplog: pytest.LogCaptureFixture) -> None:
    async def boom(rt: Runtime, post: FormPost) -> JsonReply:
        raise RuntimeError("secret internal detail")

    status, headers, body = await _call(boom, [{"type": "http.request", "body": b""}])
    assert status == 500
    assert b'"error":"server_error"' in body
    assert b"secret internal detail" not in body
    assert headers[b"cache-control"] == b"no-store"
    assert any("unhandled error on POST /oauth2/token" in record.getMessage() for record in caplog.records)


async def test_an_empty_reply_has_no_content_type() -> None:
    async def nothing(rt: Runtime, post: FormPost) -> JsonReply:
        return JsonReply(None)

    status, headers, body = await _call(nothing, [{"type": "http.request", "body": b""}])
    assert (status, body, headers[b"content-length"]) == (200, b"", b"0")
    assert b"content-type" not in headers
