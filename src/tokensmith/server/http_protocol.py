"""The HTTP/1.1 protocol every tokensmith server runs on: uvicorn's httptools protocol, minus one uvicorn bug.

Java's built-in ``HttpClient``, which Spring's ``RestClient`` uses by default (and with it Spring Security's token
clients: token exchange, client credentials), offers HTTP/2 on each plain-HTTP request with ``Upgrade: h2c``.
uvicorn's httptools protocol refuses the upgrade, as RFC 9110 section 7.8 allows, but stops parsing at the end of
the headers, so the request body is lost (Kludex/uvicorn#2722, MagicStack/httptools#124): a Spring token request
arrives without ``grant_type``. uvicorn's h11 protocol reads it correctly, at about a quarter of the throughput.

This protocol renames the ``Upgrade: h2c`` header of a request to ``Ignored: h2c`` before httptools sees it, so the
request is parsed as the plain HTTP/1.1 request it also is. The replacement has the same length and is made only
inside a header block that starts the received chunk, so message framing never changes. Other upgrades
(WebSocket) are untouched.
"""

from __future__ import annotations

import re

from uvicorn.protocols.http.httptools_impl import HttpToolsProtocol

_REQUEST_LINE = re.compile(rb"[A-Z]{3,10} \S+ HTTP/1\.[01]\r\n")
_H2C_UPGRADE = re.compile(rb"\r\nupgrade(:[ \t]*h2c[ \t]*\r\n)", re.IGNORECASE)


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


class H2cTolerantHttpToolsProtocol(HttpToolsProtocol):
    """uvicorn's httptools protocol that reads the body of requests offering ``Upgrade: h2c``."""

    def data_received(self, data: bytes) -> None:
        super().data_received(ignore_h2c_upgrade(data))


# Pass as uvicorn's ``http=`` (``uvicorn.run(app, http=HTTP_PROTOCOL)``).
HTTP_PROTOCOL = H2cTolerantHttpToolsProtocol
