"""The HTTP protocol answers the direct endpoints' plain requests without ASGI (server/http_protocol.py), with the
same bytes the ASGI path writes, and leaves every other request to uvicorn's ASGI cycle.

Driven through uvicorn's protocol code with a transport that records every write (as test_http_protocol.py)."""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Awaitable, Callable, MutableMapping
from types import SimpleNamespace
from typing import Any

import pytest
from tests.server.test_http_protocol import RecordingTransport, settle
from uvicorn.config import Config
from uvicorn.server import ServerState

from tokensmith.errors import invalid_request
from tokensmith.server.endpoints.direct import DirectEndpoint, FormPost, JsonReply
from tokensmith.server.http_protocol import HTTP_PROTOCOL

Message = MutableMapping[str, Any]
LIMIT = 2048


class EndpointApp:
    """An app with tokensmith's shape: ``direct_routes``, and an ASGI callable that hands those paths to them (as
    TokensmithApp does) and records every request that reaches it."""

    def __init__(self, handler: Callable[[Any, FormPost], Awaitable[JsonReply]], *, direct: bool = True) -> None:
        runtime = SimpleNamespace(ctx=SimpleNamespace(config=SimpleNamespace(max_request_bytes=LIMIT)))
        self.endpoint = DirectEndpoint(handler, lambda: runtime)  # type: ignore[arg-type, return-value]
        if direct:
            self.direct_routes = {"/oauth2/token": self.endpoint}
        self.asgi_requests: list[str] = []

    async def __call__(self, scope: Message, receive: Any, send: Any) -> None:
        if scope["type"] != "http":
            return
        self.asgi_requests.append(f"{scope['method']} {scope['path']}")
        await self.endpoint(scope, receive, send)


async def issue(runtime: Any, post: FormPost) -> JsonReply:
    if post.form.get("grant_type") != "client_credentials":
        raise invalid_request("unsupported grant")
    return JsonReply({"access_token": "t-" + (post.authorization or "none"), "token_type": "Bearer"})


async def connect(app: Any, **config: Any) -> tuple[Any, RecordingTransport]:
    settings = Config(
        app=app, http=HTTP_PROTOCOL, lifespan="off", **({"log_level": "critical", "access_log": False} | config)
    )
    settings.load()
    protocol = HTTP_PROTOCOL(config=settings, server_state=ServerState(), app_state={})
    transport = RecordingTransport()
    protocol.connection_made(transport)
    return protocol, transport


def token_request(
    body: bytes = b"grant_type=client_credentials",
    *,
    target: bytes = b"/oauth2/token",
    method: bytes = b"POST",
    version: bytes = b"1.1",
    extra: bytes = b"",
) -> bytes:
    return (
        method + b" " + target + b" HTTP/" + version + b"\r\nHost: 127.0.0.1\r\nAuthorization: Basic abc\r\n"
        b"Content-Type: application/x-www-form-urlencoded\r\nContent-Length: %d\r\n"
        % len(body)
        + extra
        + b"\r\n"
        + body
    )


async def answer(app: EndpointApp, data: bytes, **config: Any) -> tuple[Any, RecordingTransport]:
    protocol, transport = await connect(app, **config)
    protocol.data_received(data)
    await settle()
    return protocol, transport


async def test_a_plain_token_request_skips_asgi_and_gets_the_bytes_asgi_writes() -> None:
    direct = EndpointApp(issue)
    _, fast = await answer(direct, token_request())
    asgi = EndpointApp(issue, direct=False)
    _, slow = await answer(asgi, token_request())
    assert direct.asgi_requests == []
    assert asgi.asgi_requests == ["POST /oauth2/token"]
    assert len(fast.writes) == 1
    assert fast.writes == slow.writes
    assert fast.writes[0].startswith(b"HTTP/1.1 200 OK\r\n")
    assert b"\r\ncache-control: no-store\r\n" in fast.writes[0]
    assert fast.writes[0].endswith(b'\r\n\r\n{"access_token":"t-Basic abc","token_type":"Bearer"}')
    assert not fast.closed  # keep-alive


async def test_errors_of_the_endpoint_are_the_same_on_both_paths() -> None:
    for body in (b"grant_type=password", b"x" * (LIMIT + 1), b"grant_type=a&grant_type=b"):
        _, fast = await answer(EndpointApp(issue), token_request(body))
        _, slow = await answer(EndpointApp(issue, direct=False), token_request(body))
        assert fast.writes == slow.writes, body
        assert fast.writes[0].split(b"\r\n", 1)[0] in (
            b"HTTP/1.1 400 Bad Request",
            b"HTTP/1.1 413 Request Entity Too Large",
        )


@pytest.mark.parametrize(
    "data",
    [
        token_request(target=b"/oauth2/token?grant_type=client_credentials"),
        token_request(extra=b"Expect: 100-continue\r\n"),
        token_request(method=b"PUT"),
        b"POST /oauth2/token HTTP/1.1\r\nHost: x\r\nContent-Type: application/x-www-form-urlencoded\r\n"
        b"Transfer-Encoding: chunked\r\n\r\n1d\r\ngrant_type=client_credentials\r\n0\r\n\r\n",
        token_request(b"grant_type=client_credentials&x=" + b"y" * 70_000),
    ],
    ids=["query string", "expect", "another method", "chunked", "beyond uvicorn's buffer"],
)
async def test_other_requests_take_the_asgi_path(data: bytes) -> None:
    app = EndpointApp(issue)
    _, transport = await answer(app, data)
    assert len(app.asgi_requests) == 1
    assert transport.writes[0].startswith(b"HTTP/1.1 ")


async def test_pipelined_requests_are_answered_in_order() -> None:
    app = EndpointApp(issue)
    first = token_request()
    second = token_request(b"grant_type=password")
    _, transport = await answer(app, first + second + first)
    statuses = [write.split(b"\r\n", 1)[0] for write in transport.writes]
    assert statuses == [b"HTTP/1.1 200 OK", b"HTTP/1.1 400 Bad Request", b"HTTP/1.1 200 OK"]
    assert len(app.asgi_requests) == 2  # those behind a request still being answered wait in uvicorn's pipeline


async def test_http_1_0_and_connection_close_end_the_connection_after_the_answer() -> None:
    _, old = await answer(EndpointApp(issue), token_request(version=b"1.0"))
    assert b"\r\nconnection: close\r\n" in old.writes[0]
    assert old.closed
    _, closing = await answer(EndpointApp(issue), token_request(extra=b"Connection: close\r\n"))
    assert b"\r\nconnection: close\r\n" in closing.writes[0]
    assert closing.closed


async def test_headers_out_of_bounds_get_431_and_the_connection_closes() -> None:
    app = EndpointApp(issue)
    _, transport = await answer(app, token_request(extra=b"".join(b"X-%d: v\r\n" % n for n in range(120))))
    assert app.asgi_requests == []
    assert transport.writes[0].startswith(b"HTTP/1.1 431 ")
    assert transport.writes[0].count(b"connection: close") == 1
    assert transport.closed


async def test_a_reply_header_with_a_line_break_is_a_500_not_a_split_response() -> None:
    async def smuggle(runtime: Any, post: FormPost) -> JsonReply:
        return JsonReply({"error": "invalid_token"}, 401, {"WWW-Authenticate": 'Bearer error="x"\r\nSet-Cookie: a=b'})

    _, transport = await answer(EndpointApp(smuggle), token_request())
    (response,) = transport.writes
    assert response.startswith(b"HTTP/1.1 500 Internal Server Error\r\n")
    assert b"Set-Cookie" not in response
    head, _, body = response.partition(b"\r\n\r\n")
    assert body == b"Internal Server Error"
    assert f"\r\ncontent-length: {len(body)}\r\n".encode() in head  # framed by its own length
    assert transport.closed


async def answering_behind(gate: asyncio.Event) -> tuple[Any, RecordingTransport]:
    """A connection whose token request is being answered by an endpoint that waits for ``gate``."""

    async def slow(runtime: Any, post: FormPost) -> JsonReply:
        await gate.wait()
        return JsonReply({"access_token": "late"})

    protocol, transport = await connect(EndpointApp(slow))
    protocol.data_received(token_request())
    await settle()
    return protocol, transport


async def test_a_client_gone_before_the_answer_gets_nothing_written() -> None:
    gate = asyncio.Event()
    protocol, transport = await answering_behind(gate)
    protocol.connection_lost(None)
    gate.set()
    await settle()
    assert transport.writes == []
    assert not protocol.tasks  # the answer ran to its end and left the server's task set


async def test_a_graceful_shutdown_lets_the_answer_out_then_closes() -> None:
    gate = asyncio.Event()
    protocol, transport = await answering_behind(gate)
    protocol.shutdown()
    assert not transport.closed
    gate.set()
    await settle()
    assert b"\r\nconnection: close\r\n" in transport.writes[0]
    assert transport.writes[0].endswith(b'{"access_token":"late"}')
    assert transport.closed


class Lines(logging.Handler):
    def __init__(self) -> None:
        super().__init__()
        self.lines: list[str] = []

    def emit(self, record: logging.LogRecord) -> None:
        self.lines.append(record.getMessage())


async def test_the_access_log_line_is_uvicorns() -> None:
    access = logging.getLogger("uvicorn.access")
    app, asgi, proxied = EndpointApp(issue), EndpointApp(issue, direct=False), EndpointApp(issue)
    requests = [(app, token_request()), (asgi, token_request())]
    # Behind a proxy the line names the client the proxy headers give: uvicorn's path writes it.
    requests.append((proxied, token_request(extra=b"X-Forwarded-For: 10.1.2.3\r\n")))
    lines = Lines()
    for target, data in requests:
        protocol, _ = await connect(target, access_log=True, log_level="info")  # each Config sets up logging anew
        access.addHandler(lines)
        try:
            protocol.data_received(data)
            await settle()
        finally:
            access.removeHandler(lines)
    assert app.asgi_requests == []
    assert asgi.asgi_requests == proxied.asgi_requests == ["POST /oauth2/token"]
    assert lines.lines[:2] == ['127.0.0.1:50000 - "POST /oauth2/token HTTP/1.1" 200'] * 2
    assert len(lines.lines) == 3
