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

**The direct endpoints skip ASGI.** The token, introspection and revocation endpoints (``endpoints/direct.py``)
are plain coroutines from a form to a JSON reply. Through ASGI each of their requests also paid for uvicorn's
request cycle: the scope dict, an ``asyncio.Event``, the ``receive`` and ``send`` messages, the checks on every
response header. Measured: 25 µs of CPU per request for a trivial ASGI app here, 10 µs for the same answer
written by a bare protocol. So a request that is plainly one of theirs is read to its end by this protocol and
handed to the endpoint's :meth:`~tokensmith.server.endpoints.direct.DirectEndpoint.answer_buffered`, and the reply
is written with uvicorn's status line and default headers (``date``, ``server``), as uvicorn would write it. Plainly
one of theirs: a POST to the exact path, no query string, the body framed by one ``Content-Length`` of at most
uvicorn's read buffer (64 KiB), no ``Expect``, no upgrade, no request of the connection still being answered, and
an app that is tokensmith's at most behind uvicorn's proxy-headers middleware (which changes nothing these
endpoints read), served at the root without a concurrency limit. Every other request takes the ASGI path, whose
answers are the same (the endpoint's errors included: 413, 415, 431, the query-string 400). With uvicorn's access
log on, a request carrying ``X-Forwarded-For`` takes the ASGI path too, so that its log line names the client the
proxy headers name. Measured served (ES256, one process, six alternating rounds): exchanges 3 029 -> 3 478 a second
and client credentials 5 880 -> 7 130 in the median, ahead in every round; CPU per exchange 333 -> 290 µs.
"""

from __future__ import annotations

import asyncio
import contextvars
import re
import weakref
from collections.abc import Mapping
from typing import Any, cast

from uvicorn.config import Config
from uvicorn.middleware.proxy_headers import ProxyHeadersMiddleware
from uvicorn.protocols.http.flow_control import HIGH_WATER_LIMIT
from uvicorn.protocols.http.httptools_impl import HEADER_VALUE_RE, STATUS_LINE, HttpToolsProtocol

from tokensmith.server.endpoints.direct import DirectEndpoint, JsonReply, encode_reply

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

    def write_now(self, data: bytes) -> None:
        """Write ``data`` now: with what is held, as :meth:`write` joins them, or on its own."""
        if self._held:
            self.write(data)
        else:
            self._transport.write(data)

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


class _NoReader:
    """uvicorn's protocol sets its cycle's ``message_event`` on new data and on a disconnect, for an ASGI
    ``receive`` that may be waiting; a direct request has none."""

    __slots__ = ()

    def set(self) -> None:
        pass


class DirectCycle:
    """A request for a direct endpoint, read to its end before the endpoint runs. It has the attributes uvicorn's
    protocol reads and writes on its current cycle (``response_complete``, ``disconnected``, ``keep_alive``,
    ``message_event``), so that a disconnect, a graceful shutdown and a pipelined request behind it are handled
    by uvicorn's own code."""

    __slots__ = (
        "body",
        "disconnected",
        "endpoint",
        "headers",
        "http_version",
        "keep_alive",
        "path",
        "response_complete",
    )
    message_event = _NoReader()

    def __init__(
        self,
        endpoint: DirectEndpoint,
        path: str,
        headers: list[tuple[bytes, bytes]],
        http_version: str,
        keep_alive: bool,
    ) -> None:
        self.endpoint = endpoint
        self.path = path
        self.headers = headers
        self.http_version = http_version
        self.keep_alive = keep_alive
        self.body = bytearray()
        self.disconnected = False
        self.response_complete = False


def direct_routes(app: Any, config: Config) -> Mapping[bytes, DirectEndpoint]:
    """The direct endpoints of ``app`` by raw path, when their requests may skip ASGI (see the module's doc);
    else none. Worked out once per server (``config``), not per connection."""
    routes = _ROUTES_BY_CONFIG.get(config)
    if routes is None:
        routes = _ROUTES_BY_CONFIG[config] = _direct_routes(app, config)
    return routes


def _direct_routes(app: Any, config: Config) -> Mapping[bytes, DirectEndpoint]:
    if isinstance(app, ProxyHeadersMiddleware):
        app = app.app
    routes = getattr(app, "direct_routes", None)
    if not isinstance(routes, dict) or config.root_path or config.limit_concurrency is not None:
        return {}
    return {path.encode("ascii"): endpoint for path, endpoint in routes.items() if isinstance(endpoint, DirectEndpoint)}


_ROUTES_BY_CONFIG: weakref.WeakKeyDictionary[Config, Mapping[bytes, DirectEndpoint]] = weakref.WeakKeyDictionary()
_SERVER_ERROR_BODY = b"Internal Server Error"
# uvicorn's plain-text 500, its fields after the default ones and its body; the length is the body's.
_SERVER_ERROR_REST = b"content-type: text/plain; charset=utf-8\r\ncontent-length: %d\r\nconnection: close\r\n\r\n%s" % (
    len(_SERVER_ERROR_BODY),
    _SERVER_ERROR_BODY,
)


class TokensmithHttpProtocol(HttpToolsProtocol):
    """uvicorn's httptools protocol that reads the body of requests offering ``Upgrade: h2c``, writes each
    response's head together with its body, and answers the direct endpoints' plain requests without ASGI."""

    def connection_made(self, transport: asyncio.Transport) -> None:  # type: ignore[override]  # as uvicorn's
        self._coalescing = CoalescingTransport(transport, self.loop)
        self._direct_routes = direct_routes(self.app, self.config)
        super().connection_made(cast(asyncio.Transport, self._coalescing))

    def data_received(self, data: bytes) -> None:
        super().data_received(ignore_h2c_upgrade(data))

    def on_headers_complete(self) -> None:
        cycle = self._direct_cycle()
        if cycle is None:
            super().on_headers_complete()
        else:
            self.cycle = cast(Any, cycle)

    def on_body(self, body: bytes) -> None:
        cycle: Any = self.cycle
        if isinstance(cycle, DirectCycle):
            cycle.body += body  # no more than its Content-Length: httptools frames the body by it
        else:
            super().on_body(body)

    def on_message_complete(self) -> None:
        cycle: Any = self.cycle
        if isinstance(cycle, DirectCycle):
            self._start_direct(cycle)
        else:
            super().on_message_complete()

    def _direct_cycle(self) -> DirectCycle | None:
        endpoint = self._direct_routes.get(self.url)
        if endpoint is None or self.expect_100_continue or self.parser.get_method() != b"POST":
            return None
        if (
            self.parser.should_upgrade()
            or self.pipeline
            or (self.cycle is not None and not self.cycle.response_complete)
        ):
            return None
        length: bytes | None = None
        for name, value in self.headers:
            if name == b"content-length":
                if length is not None:
                    return None
                length = value
            elif name == b"transfer-encoding" or (name == b"x-forwarded-for" and self.access_log):
                return None
        if length is None or not length.isdigit() or int(length) > HIGH_WATER_LIMIT:
            return None
        http_version = self.parser.get_http_version()
        keep_alive = http_version != "1.0" and self.parser.should_keep_alive()
        return DirectCycle(endpoint, self.url.decode("ascii"), self.headers, http_version, keep_alive)

    def _start_direct(self, cycle: DirectCycle) -> None:
        # As uvicorn starts its ASGI task (reset_contextvars included); the server waits for it at shutdown.
        if self.config.reset_contextvars:
            task = self.loop.create_task(self._answer_direct(cycle), context=contextvars.Context())
        else:
            task = self.loop.create_task(self._answer_direct(cycle))
        task.add_done_callback(self.tasks.discard)
        self.tasks.add(task)

    async def _answer_direct(self, cycle: DirectCycle) -> None:
        try:
            reply = await cycle.endpoint.answer_buffered(cycle.path, cycle.headers, bytes(cycle.body))
            response = self._direct_response(cycle, reply)
        except BaseException as exc:  # as uvicorn's run_asgi: logged, a 500, the connection closed
            self.logger.error("Exception in ASGI application\n", exc_info=exc)
            response = self._server_error(cycle)
        if self.flow.write_paused and not cycle.disconnected:
            await self.flow.drain()
        if cycle.disconnected or self._coalescing.is_closing():
            return
        self._coalescing.write_now(response)
        cycle.response_complete = True
        if not cycle.keep_alive:
            self._coalescing.close()
        self.on_response_complete()

    def _direct_response(self, cycle: DirectCycle, reply: JsonReply) -> bytes:
        for field_value in reply.headers.values():  # the endpoint's own fields carry request data (RFC 6750 3)
            if HEADER_VALUE_RE.search(field_value.encode("latin-1")):
                raise RuntimeError("Invalid HTTP header value.")
        headers, body = encode_reply(reply)
        content = self._status_and_default_headers(reply.status)
        has_connection_close = False
        for name, value in headers:
            if name == b"connection" and b"close" in [token.strip().lower() for token in value.split(b",")]:
                cycle.keep_alive = False
                has_connection_close = True
            content.extend((name, b": ", value, b"\r\n"))
        if not cycle.keep_alive and not has_connection_close:
            content.append(b"connection: close\r\n")
        content.append(b"\r\n")
        content.append(body)
        if self.access_log:
            client = f"{self.client[0]}:{self.client[1]}" if self.client else ""
            # uvicorn's format and arguments: its AccessFormatter reads them by position.
            self.access_logger.info(
                '%s - "%s %s HTTP/%s" %d', client, "POST", cycle.path, cycle.http_version, reply.status
            )
        return b"".join(content)

    def _status_and_default_headers(self, status: int) -> list[bytes]:
        """The status line and uvicorn's default header fields (``date``, ``server``), as uvicorn writes them."""
        content = [STATUS_LINE[status]]
        for name, value in self.server_state.default_headers:
            content.extend((name, b": ", value, b"\r\n"))
        return content

    def _server_error(self, cycle: DirectCycle) -> bytes:
        cycle.keep_alive = False
        content = self._status_and_default_headers(500)
        content.append(_SERVER_ERROR_REST)
        return b"".join(content)


# Pass as uvicorn's ``http=`` (``uvicorn.run(app, http=HTTP_PROTOCOL)``).
HTTP_PROTOCOL = TokensmithHttpProtocol
