"""The HTTP/1.1 protocol every tokensmith server runs on: uvicorn's httptools protocol, minus one uvicorn bug and
with one write per response.

**Requests offering h2c keep their body.** Java's built-in ``HttpClient``, which Spring's ``RestClient`` uses by
default (and with it Spring Security's token clients: token exchange, client credentials), offers HTTP/2 on each
plain-HTTP request with ``Upgrade: h2c``. uvicorn's httptools protocol refuses the upgrade, as RFC 9110 section 7.8
allows, but stops parsing at the end of the headers, so the request body is lost (Kludex/uvicorn#2722,
MagicStack/httptools#124): a Spring token request arrives without ``grant_type``. uvicorn's h11 protocol reads it
correctly, at about a quarter of the throughput. This protocol renames the ``Upgrade: h2c`` header of a request to
``Ignored: h2c`` before httptools sees it, so the request is parsed as the plain HTTP/1.1 request it also is. The
replacement has the same length and is made only inside a header block that starts the received chunk, so message
framing never changes. Other upgrades (WebSocket) are untouched.

**The head of a response goes out with its body.** uvicorn writes the status line and headers when the app sends
``http.response.start`` and the body when it sends ``http.response.body``: two writes to the socket, so two system
calls and, with ``TCP_NODELAY``, two TCP segments for every response, however small (about 4 µs of CPU for the
second one over loopback here). Here a write is held until the next write, which carries it, or until the end of
the event loop's current turn: the head waits for the body and both go out in one write, while a head with no body
in the same turn (a HEAD request, a streamed body still being computed, an app that failed after starting its
response) or a ``100 Continue`` goes out at the end of that turn. The same bytes, in the same order.
"""

from __future__ import annotations

import asyncio
import re
from typing import Any, cast

from uvicorn.protocols.http.httptools_impl import HttpToolsProtocol

_REQUEST_LINE = re.compile(rb"[A-Z]{3,10} \S+ HTTP/1\.[01]\r\n")
_H2C_UPGRADE = re.compile(rb"\r\nupgrade(:[ \t]*h2c[ \t]*\r\n)", re.IGNORECASE)
# Up to this size a body is copied behind the head (one write); a larger one is written on its own after the head,
# as before (copying it would cost more than the system call saved).
_JOIN_LIMIT = 64 * 1024


def ignore_h2c_upgrade(data: bytes) -> bytes:
    """``data`` with the ``Upgrade: h2c`` header of the request it starts renamed (same length), else as is."""
    if b"2c" not in data or not _REQUEST_LINE.match(data):
        return data
    end_of_headers = data.find(b"\r\n\r\n")
    head = data[: end_of_headers + 2] if end_of_headers >= 0 else data
    renamed, count = _H2C_UPGRADE.subn(rb"\r\nIgnored\1", head)
    if not count:
        return data
    return renamed + data[len(head) :]


class CoalescingTransport:
    """A connection's transport that joins each write with the next one made in the same turn of the event loop.

    A write finding nothing held is held, and goes out with the next write (one system call for both) or at the end
    of the event loop's current turn, whichever comes first; a response's head is held by its body. Every write of
    the connection goes through it, in order, the protocol's own included (its error responses), so bytes never
    overtake each other. Everything else is the transport's own.
    """

    __slots__ = ("_held", "_loop", "_release_scheduled", "_transport")

    def __init__(self, transport: asyncio.Transport, loop: asyncio.AbstractEventLoop) -> None:
        self._transport = transport
        self._loop = loop
        self._held = b""
        self._release_scheduled = False

    def write(self, data: bytes) -> None:
        held = self._held
        if held:
            self._held = b""
            if len(data) <= _JOIN_LIMIT:
                self._transport.write(held + data)
            else:
                self._transport.write(held)
                self._transport.write(data)
            return
        self._held = data
        if not self._release_scheduled:
            self._release_scheduled = True
            self._loop.call_soon(self._release_at_end_of_turn)

    def release(self) -> None:
        """Write what is held now."""
        held = self._held
        if held:
            self._held = b""
            if not self._transport.is_closing():
                self._transport.write(held)

    def _release_at_end_of_turn(self) -> None:
        self._release_scheduled = False
        self.release()

    def close(self) -> None:
        self.release()
        self._transport.close()

    def is_closing(self) -> bool:
        return self._transport.is_closing()

    def __getattr__(self, name: str) -> Any:
        return getattr(self._transport, name)


class TokensmithHttpProtocol(HttpToolsProtocol):
    """uvicorn's httptools protocol that reads the body of requests offering ``Upgrade: h2c`` and writes each
    response's head together with its body."""

    def connection_made(self, transport: asyncio.Transport) -> None:  # type: ignore[override]  # as uvicorn's
        super().connection_made(cast(asyncio.Transport, CoalescingTransport(transport, self.loop)))

    def data_received(self, data: bytes) -> None:
        super().data_received(ignore_h2c_upgrade(data))


# Pass as uvicorn's ``http=`` (``uvicorn.run(app, http=HTTP_PROTOCOL)``).
HTTP_PROTOCOL = TokensmithHttpProtocol
