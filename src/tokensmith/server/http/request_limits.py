"""Bounds on request headers, checked before any endpoint runs.

The HTTP protocol (http_protocol.py) cuts off a head larger than 64 KiB as it arrives; within that, this middleware
answers a request with more than 100 header fields or more than 32 KiB of them with 431 (RFC 6585) and the usual
error JSON, so nothing downstream parses or stores them. Browsers and OAuth clients send a few kilobytes.
"""

from __future__ import annotations

from starlette.types import ASGIApp, Receive, Scope, Send

from tokensmith.errors import OAuthError
from tokensmith.server.http.responses import no_store_json

MAX_HEADERS = 100
MAX_HEADER_BYTES = 32 * 1024


class RequestLimits:
    def __init__(self, app: ASGIApp, *, max_headers: int = MAX_HEADERS, max_header_bytes: int = MAX_HEADER_BYTES):
        self.app = app
        self.max_headers = max_headers
        self.max_header_bytes = max_header_bytes

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] == "http":
            problem = self.header_problem(scope["headers"])
            if problem is not None:
                # 431 (RFC 6585); the connection is closed after it.
                error = OAuthError("invalid_request", problem, status_code=431, headers={"Connection": "close"})
                await no_store_json(error.to_dict(), error.status_code, error.headers)(scope, receive, send)
                return
        await self.app(scope, receive, send)

    def header_problem(self, headers: list[tuple[bytes, bytes]]) -> str | None:
        """Why ``headers`` are refused, or None when they are within the bounds."""
        if len(headers) > self.max_headers:
            return f"the request has {len(headers)} header fields; at most {self.max_headers} are accepted"
        if sum(len(name) + len(value) for name, value in headers) > self.max_header_bytes:
            return f"the request header fields exceed {self.max_header_bytes} bytes"
        return None
