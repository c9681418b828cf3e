"""The ASGI types and the few response and header helpers the resource server's middlewares share."""

from __future__ import annotations

import json
from collections.abc import Awaitable, Callable, Iterable, MutableMapping
from typing import Any

Scope = MutableMapping[str, Any]
Message = MutableMapping[str, Any]
Receive = Callable[[], Awaitable[Message]]
Send = Callable[[Message], Awaitable[None]]
ASGIApp = Callable[[Scope, Receive, Send], Awaitable[None]]


async def send_response(
    send: Send, status: int, headers: Iterable[tuple[bytes, bytes]], body: bytes, length: int | None = None
) -> None:
    """One complete HTTP response; ``length`` is the ``Content-Length`` when it is not ``len(body)`` (HEAD)."""
    size = len(body) if length is None else length
    all_headers = [*headers, (b"content-length", str(size).encode("ascii"))]
    await send({"type": "http.response.start", "status": status, "headers": all_headers})
    await send({"type": "http.response.body", "body": body})


async def send_json(send: Send, status: int, body: dict[str, str], extra: Iterable[tuple[bytes, bytes]] = ()) -> None:
    """An error or status document as JSON, never cached."""
    headers = [(b"content-type", b"application/json"), (b"cache-control", b"no-store"), *extra]
    await send_response(send, status, headers, json.dumps(body).encode("utf-8"))


def header_values(scope: Scope, name: bytes) -> list[str]:
    """Every value of the request header ``name`` (lower case), in order."""
    return [str(value.decode("latin-1")) for key, value in scope.get("headers", ()) if key.lower() == name]


def header(scope: Scope, name: bytes) -> str | None:
    """The first value of the request header ``name`` (lower case), if any."""
    values = header_values(scope, name)
    return values[0] if values else None
