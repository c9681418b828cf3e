"""Bounds on request headers, checked before any endpoint runs.

uvicorn's httptools protocol, which the server runs on, limits the request line but neither the number nor the
size of headers: a 10 MB header or 100 000 headers were read and handed to the app. This middleware answers
such requests with 431 (RFC 6585) and the usual error JSON, so nothing downstream parses or stores them. The
bounds are generous: browsers and OAuth clients send a few kilobytes.
"""

from __future__ import annotations

from starlette.types import ASGIApp, Receive, Scope, Send

from tokensmith.errors import OAuthError
from tokensmith.server.endpoints.responses import no_store_json

MAX_HEADERS = 100
MAX_HEADER_BYTES = 32 * 1024


def header_problem(
    headers: list[tuple[bytes, bytes]], max_headers: int = MAX_HEADERS, max_header_bytes: int = MAX_HEADER_BYTES
) -> str | None:
    """Why ``headers`` are refused, or None when they are within the bounds."""
    if len(headers) > max_headers:
        return f"the request has {len(headers)} header fields; at most {max_headers} are accepted"
    size = 0
    for name, value in headers:
        size += len(name) + len(value)
    if size > max_header_bytes:
        return f"the request header fields exceed {max_header_bytes} bytes"
    return None


def header_limit_error(problem: str) -> OAuthError:
    """431 (RFC 6585) for headers out of bounds; the connection is closed after it."""
    return OAuthError("invalid_request", problem, status_code=431, headers={"Connection": "close"})


class RequestLimits:
    def __init__(self, app: ASGIApp, *, max_headers: int = MAX_HEADERS, max_header_bytes: int = MAX_HEADER_BYTES):
        self.app = app
        self.max_headers = max_headers
        self.max_header_bytes = max_header_bytes

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] == "http":
            problem = header_problem(scope["headers"], self.max_headers, self.max_header_bytes)
            if problem is not None:
                error = header_limit_error(problem)
                await no_store_json(error.to_dict(), error.status_code, error.headers)(scope, receive, send)
                return
        await self.app(scope, receive, send)
