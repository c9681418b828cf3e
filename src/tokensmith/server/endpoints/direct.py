"""The client-authenticated JSON endpoints (token, introspection, revocation) served straight from ASGI.

These three endpoints sit on the hot path of every service-to-service call (a token exchange per call, an
introspection per opaque token), and they need nothing a web framework offers: no routing beyond one exact path,
no templates, no sessions, no cookies. Profiled under load, Starlette's middleware, router and request/response
adapters cost about a seventh of a token exchange. So the app hands these paths to :class:`DirectEndpoint`
before Starlette sees them, and each endpoint is a plain coroutine from a :class:`FormPost` to a
:class:`JsonReply`.

What Starlette did for these paths is done here, with the same observable behaviour: the header bounds of
:mod:`tokensmith.server.request_limits` (431), 405 with ``Allow`` for other methods, the bounded form body
(``forms.py``: 400/413), RFC 6749 error JSON for every :class:`OAuthError`, a logged 500 with a generic body for
anything unexpected, and ``Cache-Control: no-store`` on every answer.
"""

from __future__ import annotations

import logging
from collections.abc import Awaitable, Callable, Mapping, MutableMapping
from dataclasses import dataclass, field
from typing import Any

from tokensmith.errors import OAuthError, invalid_request
from tokensmith.json_text import json_dumper
from tokensmith.server.core.grants.base import TokenRequest
from tokensmith.server.endpoints.forms import (
    check_declared_length,
    check_form_content_type,
    parse_form,
    request_too_large,
)
from tokensmith.server.endpoints.responses import NO_STORE
from tokensmith.server.endpoints.runtime import Runtime
from tokensmith.server.request_limits import header_limit_error, header_problem

logger = logging.getLogger("tokensmith.server")

Scope = MutableMapping[str, Any]
Message = MutableMapping[str, Any]
Receive = Callable[[], Awaitable[Message]]
Send = Callable[[Message], Awaitable[None]]

_NO_STORE_HEADERS = [(name.lower().encode("latin-1"), value.encode("latin-1")) for name, value in NO_STORE.items()]
_JSON_TYPE = (b"content-type", b"application/json")
# As Starlette's JSONResponse: UTF-8, compact, no NaN.
_RESPONSE_JSON = json_dumper(ensure_ascii=False, compact=True, allow_nan=False)
_SERVER_ERROR = {"error": "server_error", "error_description": "the server could not process the request"}

__all__ = ["DirectEndpoint", "FormPost", "JsonReply", "buffered_form_post", "encode_reply", "read_form_post"]


@dataclass(frozen=True, slots=True)
class FormPost:
    """A POSTed form and the one header a client-authenticated endpoint reads (RFC 6749 2.3.1)."""

    form: TokenRequest
    authorization: str | None


@dataclass(frozen=True, slots=True)
class JsonReply:
    """What an endpoint answers: a JSON body (None for an empty 200), its status and extra headers."""

    body: Mapping[str, Any] | None
    status: int = 200
    headers: Mapping[str, str] = field(default_factory=dict)

    @classmethod
    def error(cls, error: OAuthError) -> JsonReply:
        return cls(error.to_dict(), error.status_code, error.headers)


Handler = Callable[[Runtime, FormPost], Awaitable[JsonReply]]


async def read_form_post(scope: Scope, receive: Receive, limit: int) -> FormPost:
    """The request's form (RFC 6749 3.2: form-encoded body, nothing in the query string), bounded by ``limit``."""
    if scope.get("query_string"):
        raise invalid_request("parameters must be sent in the request body, not the query string")
    authorization = _checked_form_headers(scope["headers"], limit)
    body = await _read_body(receive, limit)
    return FormPost(TokenRequest(params=parse_form(body)), authorization)


def buffered_form_post(headers: list[tuple[bytes, bytes]], body: bytes, limit: int) -> FormPost:
    """:func:`read_form_post` for a request whose path had no query string and whose body is already read."""
    authorization = _checked_form_headers(headers, limit)
    if len(body) > limit:
        raise request_too_large(limit)
    return FormPost(TokenRequest(params=parse_form(body)), authorization)


def _checked_form_headers(headers: list[tuple[bytes, bytes]], limit: int) -> str | None:
    """The Authorization header, once Content-Type and Content-Length are checked."""
    authorization: str | None = None
    content_type: str | None = None
    declared: str | None = None
    # First occurrence wins, as with Starlette's Headers.get (which decodes values as latin-1 too).
    for name, value in headers:
        if name == b"authorization":
            if authorization is None:
                authorization = value.decode("latin-1")
        elif name == b"content-type":
            if content_type is None:
                content_type = value.decode("latin-1")
        elif name == b"content-length" and declared is None:
            declared = value.decode("latin-1")
    check_form_content_type(content_type or "")
    check_declared_length(declared, limit)
    return authorization


async def _read_body(receive: Receive, limit: int) -> bytes:
    chunks: list[bytes] = []
    size = 0
    while True:
        message = await receive()
        if message["type"] == "http.disconnect":
            raise invalid_request("the client disconnected before the body was complete")
        chunk: bytes = message.get("body", b"")
        size += len(chunk)
        if size > limit:
            raise request_too_large(limit)
        chunks.append(chunk)
        if not message.get("more_body", False):
            return chunks[0] if len(chunks) == 1 else b"".join(chunks)


class DirectEndpoint:
    """An ASGI callable for one POST-only JSON endpoint; ``runtime`` reads the app's Runtime per request (it
    exists only once the lifespan has started)."""

    def __init__(self, handler: Handler, runtime: Callable[[], Runtime]) -> None:
        self._handler = handler
        self._runtime = runtime

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        problem = header_problem(scope["headers"])
        if problem is not None:
            reply = JsonReply.error(header_limit_error(problem))
        elif scope["method"] != "POST":
            reply = JsonReply(
                {"error": "invalid_request", "error_description": "Method Not Allowed"}, 405, {"Allow": "POST"}
            )
        else:
            reply = await self._answer(scope, receive)
        await send_json(send, reply)

    async def _answer(self, scope: Scope, receive: Receive) -> JsonReply:
        try:
            rt = self._runtime()
            post = await read_form_post(scope, receive, rt.ctx.config.max_request_bytes)
            return await self._handler(rt, post)
        except Exception as exc:
            return _failure(exc, scope["method"], scope["path"])

    async def answer_buffered(self, path: str, headers: list[tuple[bytes, bytes]], body: bytes) -> JsonReply:
        """What :meth:`__call__` answers to a POST to ``path`` (no query string) whose body is already read: for
        the HTTP protocol's direct path (``http_protocol.py``)."""
        problem = header_problem(headers)
        if problem is not None:
            return JsonReply.error(header_limit_error(problem))
        try:
            rt = self._runtime()
            post = buffered_form_post(headers, body, rt.ctx.config.max_request_bytes)
            return await self._handler(rt, post)
        except Exception as exc:
            return _failure(exc, "POST", path)


def _failure(exc: Exception, method: str, path: str) -> JsonReply:
    """The reply to an exception from reading or handling a request (called in its ``except`` block): its RFC 6749
    error, or a logged 500 for anything unexpected."""
    if isinstance(exc, OAuthError):
        return JsonReply.error(exc)
    logger.exception("unhandled error on %s %s", method, path)
    return JsonReply(_SERVER_ERROR, 500)


def encode_reply(reply: JsonReply) -> tuple[list[tuple[bytes, bytes]], bytes]:
    """The response header fields (lower-case names) and body of ``reply``."""
    headers = list(_NO_STORE_HEADERS)
    if reply.headers:
        headers.extend(
            (name.lower().encode("latin-1"), value.encode("latin-1")) for name, value in reply.headers.items()
        )
    if reply.body is None:
        body = b""
    else:
        body = _RESPONSE_JSON(reply.body).encode("utf-8")
        headers.append(_JSON_TYPE)
    headers.append((b"content-length", str(len(body)).encode("latin-1")))
    return headers, body


async def send_json(send: Send, reply: JsonReply) -> None:
    headers, body = encode_reply(reply)
    await send({"type": "http.response.start", "status": reply.status, "headers": headers})
    await send({"type": "http.response.body", "body": body})
