"""The HTTP/1.1 protocol tokensmith is served with: uvicorn's httptools protocol plus two fixes.

**Requests offering h2c keep their body.** Java's built-in ``HttpClient``, which Spring's ``RestClient`` uses (and
with it Spring Security's token clients), offers HTTP/2 on every plain-HTTP request with ``Upgrade: h2c``. httptools
then skips the request body and stops at the end of the head (MagicStack/httptools#124), and uvicorn answers the
request without its body (Kludex/uvicorn#2722): a Spring token request arrives without ``grant_type``. RFC 9110
7.8 lets a server ignore an upgrade, so here a request offering any upgrade but WebSocket is parsed again by the
same parser, from its head without the ``Upgrade`` field (built from the fields uvicorn collected, as uvicorn
builds the head it hands to its WebSocket protocol), followed by the bytes the parser had not read: its body and
any request pipelined behind it. httptools still frames every message.

**Request heads are bounded as they arrive.** httptools keeps an unfinished header in memory however long it grows
and uvicorn sets no time limit on a head. A head still unfinished after ``max_head_bytes`` (counted in whole reads
received while it is open, so at most one read more is held) gets 431 and the connection is closed; a connection
whose head is not complete ``head_timeout`` seconds after the connection opened or the request began is closed.
"""

from __future__ import annotations

import asyncio
from array import array
from typing import Any

import httptools
from uvicorn.config import Config
from uvicorn.protocols.http.httptools_impl import STATUS_LINE, HttpToolsProtocol
from uvicorn.server import ServerState

MAX_HEAD_BYTES = 64 * 1024
HEAD_TIMEOUT_SECONDS = 10.0


class _RequestParser(httptools.HttpRequestParser):
    """httptools' request parser that parses a request offering h2c again without its ``Upgrade`` field."""

    def __init__(self, protocol: TokensmithHttpProtocol) -> None:
        super().__init__(protocol)
        self.set_dangerous_leniencies(lenient_data_after_close=True)  # as uvicorn sets it
        self.protocol = protocol

    def feed_data(self, data: bytes | bytearray | memoryview | array[int]) -> None:
        while True:
            try:
                super().feed_data(data)
                return
            except httptools.HttpParserUpgrade as upgrade:
                head = self.protocol.take_head_without_upgrade()
                if head is None:
                    raise
                # httptools resumed the parser after the upgrade's head: it expects a new message.
                data = head + bytes(data[upgrade.args[0] :])


class TokensmithHttpProtocol(HttpToolsProtocol):
    """uvicorn's httptools protocol that reads requests offering h2c as plain HTTP/1.1 and bounds request heads."""

    def __init__(
        self,
        config: Config,
        server_state: ServerState,
        app_state: dict[str, Any],
        _loop: asyncio.AbstractEventLoop | None = None,
        *,
        max_head_bytes: int = MAX_HEAD_BYTES,
        head_timeout: float = HEAD_TIMEOUT_SECONDS,
    ) -> None:
        super().__init__(config, server_state, app_state, _loop)
        self.parser = _RequestParser(self)
        self.max_head_bytes = max_head_bytes
        self.head_timeout = head_timeout
        self._head_without_upgrade: bytes | None = None
        self._head_open = False
        self._heads_begun = 0
        self._head_bytes = 0
        self._head_timer: asyncio.TimerHandle | None = None

    def connection_made(self, transport: asyncio.Transport) -> None:  # type: ignore[override]  # as uvicorn's
        super().connection_made(transport)
        self._start_head_timer()

    def connection_lost(self, exc: Exception | None) -> None:
        self._cancel_head_timer()
        super().connection_lost(exc)

    def data_received(self, data: bytes) -> None:
        heads_begun = self._heads_begun
        super().data_received(data)
        if self._head_open and heads_begun == self._heads_begun and not self.transport.is_closing():
            # The head was open before this read and still is: all of it belongs to the head.
            self._head_bytes += len(data)
            if self._head_bytes > self.max_head_bytes:
                self._refuse_head()

    def on_message_begin(self) -> None:
        super().on_message_begin()
        self._head_open = True
        self._heads_begun += 1
        self._head_bytes = 0
        self._start_head_timer()

    def on_headers_complete(self) -> None:
        self._head_open = False
        self._cancel_head_timer()
        upgrade = next((value for name, value in self.headers if name == b"upgrade"), None)
        if self.parser.should_upgrade() and upgrade is not None and upgrade.lower() != b"websocket":
            # httptools skips this request's body: parse it again without the upgrade (_RequestParser).
            method = self.parser.get_method()
            version = self.parser.get_http_version().encode("ascii")
            lines = [method, b" ", self.url, b" HTTP/", version, b"\r\n"]
            for name, value in self.headers:
                if name != b"upgrade":
                    lines += [name, b": ", value, b"\r\n"]
            lines.append(b"\r\n")
            self._head_without_upgrade = b"".join(lines)
            return
        super().on_headers_complete()

    def on_message_complete(self) -> None:
        if self._head_without_upgrade is None:  # else the bodiless end of a request parsed again
            super().on_message_complete()

    def take_head_without_upgrade(self) -> bytes | None:
        head, self._head_without_upgrade = self._head_without_upgrade, None
        return head

    def _start_head_timer(self) -> None:
        self._cancel_head_timer()
        self._head_timer = self.loop.call_later(self.head_timeout, self._head_timed_out)

    def _cancel_head_timer(self) -> None:
        if self._head_timer is not None:
            self._head_timer.cancel()
            self._head_timer = None

    def _head_timed_out(self) -> None:
        self._head_timer = None
        if not self.transport.is_closing():
            self.transport.close()

    def _refuse_head(self) -> None:
        message = b"Request header fields too large"
        content = [STATUS_LINE[431]]
        for name, value in self.server_state.default_headers:
            content += [name, b": ", value, b"\r\n"]
        content += [
            b"content-type: text/plain; charset=utf-8\r\ncontent-length: %d\r\n" % len(message),
            b"connection: close\r\n\r\n",
            message,
        ]
        self.transport.write(b"".join(content))
        self.transport.close()


# Pass as uvicorn's ``http=`` (``uvicorn.Config(app, http=HTTP_PROTOCOL)``).
HTTP_PROTOCOL = TokensmithHttpProtocol
