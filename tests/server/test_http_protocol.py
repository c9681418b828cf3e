"""tokensmith's HTTP protocol writes each response's head together with its body (server/http_protocol.py).

Driven through uvicorn's own protocol code with a transport that records every write, so each test sees exactly
the system calls the server would make.
"""

from __future__ import annotations

import asyncio
from collections.abc import Awaitable, Callable, MutableMapping
from typing import Any

import pytest
from uvicorn.config import Config
from uvicorn.server import ServerState

from tokensmith.server.http_protocol import HTTP_PROTOCOL, CoalescingTransport

Message = MutableMapping[str, Any]
App = Callable[[Message, Callable[[], Awaitable[Message]], Callable[[Message], Awaitable[None]]], Awaitable[None]]

BODY = b'{"access_token":"' + b"a" * 600 + b'","token_type":"Bearer"}'


class RecordingTransport(asyncio.Transport):
    """A connected socket's transport that keeps what is written to it, one entry per write."""

    def __init__(self) -> None:
        super().__init__()
        self.writes: list[bytes] = []
        self.closed = False

    def write(self, data: bytes | bytearray | memoryview) -> None:
        assert not self.closed, "written after close"
        self.writes.append(bytes(data))

    def close(self) -> None:
        self.closed = True

    def is_closing(self) -> bool:
        return self.closed

    def get_extra_info(self, name: str, default: Any = None) -> Any:
        return {"peername": ("127.0.0.1", 50000), "sockname": ("127.0.0.1", 9001)}.get(name, default)

    def pause_reading(self) -> None:
        pass

    def resume_reading(self) -> None:
        pass

    def written(self) -> bytes:
        return b"".join(self.writes)


def json_app(body: bytes = BODY) -> App:
    async def app(scope: Message, receive: Callable[[], Awaitable[Message]], send: Any) -> None:
        if scope["type"] != "http":
            return
        message = await receive()
        assert message["type"] == "http.request"
        headers = [(b"content-type", b"application/json"), (b"content-length", str(len(body)).encode())]
        await send({"type": "http.response.start", "status": 200, "headers": headers})
        await send({"type": "http.response.body", "body": body})

    return app


def gated_app(gate: asyncio.Event, *, before: list[Message], after: list[Message]) -> App:
    """An app that reads the request, sends ``before``, waits for ``gate``, then sends ``after``."""

    async def app(scope: Message, receive: Callable[[], Awaitable[Message]], send: Any) -> None:
        await receive()
        for message in before:
            await send(message)
        await gate.wait()
        for message in after:
            await send(message)

    return app


async def connect(app: App) -> tuple[Any, RecordingTransport]:
    config = Config(app=app, http=HTTP_PROTOCOL, lifespan="off", log_level="critical", access_log=False)
    config.load()
    protocol = HTTP_PROTOCOL(config=config, server_state=ServerState(), app_state={})
    transport = RecordingTransport()
    protocol.connection_made(transport)
    return protocol, transport


async def settle() -> None:
    """Let the request's task and whatever it scheduled run to their end."""
    for _ in range(20):
        await asyncio.sleep(0)


def request(method: str = "POST", body: bytes = b"grant_type=client_credentials", extra: bytes = b"") -> bytes:
    return (
        f"{method} /oauth2/token HTTP/1.1\r\nHost: 127.0.0.1\r\nContent-Length: {len(body)}\r\n".encode()
        + extra
        + b"\r\n"
        + body
    )


async def test_the_head_and_the_body_go_out_in_one_write() -> None:
    protocol, transport = await connect(json_app())
    protocol.data_received(request())
    await settle()
    assert len(transport.writes) == 1, transport.writes
    (response,) = transport.writes
    assert response.startswith(b"HTTP/1.1 200 OK\r\n")
    assert b"\r\ncontent-length: %d\r\n" % len(BODY) in response
    assert response.endswith(b"\r\n\r\n" + BODY)
    protocol.connection_lost(None)


async def test_pipelined_requests_are_answered_in_order_one_write_each() -> None:
    protocol, transport = await connect(json_app())
    protocol.data_received(request() + request())
    await settle()
    assert len(transport.writes) == 2, transport.writes
    assert all(write.startswith(b"HTTP/1.1 200 OK\r\n") and write.endswith(BODY) for write in transport.writes)
    protocol.connection_lost(None)


async def test_a_head_request_gets_its_head_by_the_end_of_the_turn() -> None:
    protocol, transport = await connect(json_app())
    protocol.data_received(request("HEAD", body=b""))
    await settle()
    assert len(transport.writes) == 1, transport.writes
    assert transport.writes[0].startswith(b"HTTP/1.1 200 OK\r\n")
    assert transport.writes[0].endswith(b"\r\n\r\n")  # the head only
    protocol.connection_lost(None)


async def test_a_head_whose_body_is_still_being_computed_is_not_held_back() -> None:
    body_ready = asyncio.Event()
    start = {"type": "http.response.start", "status": 200, "headers": [(b"content-length", b"2")]}
    slow_body = gated_app(body_ready, before=[start], after=[{"type": "http.response.body", "body": b"{}"}])

    protocol, transport = await connect(slow_body)
    protocol.data_received(request())
    await settle()
    assert len(transport.writes) == 1, transport.writes
    assert transport.writes[0].startswith(b"HTTP/1.1 200 OK\r\n")
    body_ready.set()
    await settle()
    assert transport.writes[1:] == [b"{}"]
    protocol.connection_lost(None)


async def test_a_streamed_body_goes_out_part_by_part() -> None:
    second_part = asyncio.Event()
    streaming = gated_app(
        second_part,
        before=[
            {"type": "http.response.start", "status": 200, "headers": []},
            {"type": "http.response.body", "body": b"first", "more_body": True},
        ],
        after=[{"type": "http.response.body", "body": b"second"}],
    )

    protocol, transport = await connect(streaming)
    protocol.data_received(request())
    await settle()
    # The head rides with the first part (chunked: no content-length), which is not held back for the second.
    assert len(transport.writes) == 1, transport.writes
    assert b"transfer-encoding: chunked\r\n" in transport.writes[0]
    assert transport.writes[0].endswith(b"\r\n\r\n5\r\nfirst\r\n")
    second_part.set()
    await settle()
    assert transport.written().endswith(b"6\r\nsecond\r\n0\r\n\r\n")
    protocol.connection_lost(None)


async def test_an_app_failing_after_its_head_still_sends_the_head_before_the_connection_closes() -> None:
    async def failing(scope: Message, receive: Callable[[], Awaitable[Message]], send: Any) -> None:
        await receive()
        await send({"type": "http.response.start", "status": 200, "headers": [(b"content-length", b"10")]})
        raise RuntimeError("boom")

    protocol, transport = await connect(failing)
    protocol.data_received(request())
    await settle()
    assert transport.closed
    assert len(transport.writes) == 1
    assert transport.writes[0].startswith(b"HTTP/1.1 200 OK\r\n")
    protocol.connection_lost(None)


async def test_100_continue_goes_out_before_the_body_is_awaited() -> None:
    protocol, transport = await connect(json_app())
    body = b"grant_type=client_credentials"
    head = request(body=b"", extra=b"Expect: 100-continue\r\n")
    head = head.replace(b"Content-Length: 0", b"Content-Length: %d" % len(body))
    protocol.data_received(head)
    await settle()
    # The client sends the body only once it has read this.
    assert transport.writes == [b"HTTP/1.1 100 Continue\r\n\r\n"]
    protocol.data_received(body)
    await settle()
    assert len(transport.writes) == 2, transport.writes
    assert transport.writes[1].startswith(b"HTTP/1.1 200 OK\r\n")
    assert transport.writes[1].endswith(BODY)
    protocol.connection_lost(None)


@pytest.mark.parametrize("size", [64 * 1024, 64 * 1024 + 1])
async def test_a_large_body_is_not_copied_behind_the_head(size: int) -> None:
    protocol, transport = await connect(json_app(b"x" * size))
    protocol.data_received(request())
    await settle()
    expected_writes = 1 if size <= 64 * 1024 else 2
    assert len(transport.writes) == expected_writes, [len(write) for write in transport.writes]
    assert transport.written().endswith(b"\r\n\r\n" + b"x" * size)
    protocol.connection_lost(None)


async def test_a_held_write_goes_out_with_the_next_or_at_the_end_of_the_turn_never_after_close() -> None:
    transport = RecordingTransport()
    coalescing = CoalescingTransport(transport, asyncio.get_running_loop())
    coalescing.write(b"head")
    assert transport.writes == []
    coalescing.write(b"body")
    assert transport.writes == [b"headbody"]
    coalescing.write(b"alone")
    assert transport.writes == [b"headbody"]
    await settle()
    assert transport.writes == [b"headbody", b"alone"]
    coalescing.write(b"closing")
    coalescing.close()  # the keep-alive timeout, an app error: what is held goes first
    assert transport.writes[-1] == b"closing"
    assert transport.closed

    gone = RecordingTransport()
    held = CoalescingTransport(gone, asyncio.get_running_loop())
    held.write(b"head")
    gone.close()  # the peer went away before the end of the turn
    await settle()
    assert gone.writes == []
    assert held.is_closing()
    assert held.get_extra_info("peername") == ("127.0.0.1", 50000)  # the rest is the transport's own
