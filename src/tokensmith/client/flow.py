"""Sans-I/O protocol flows and the two drivers that run them.

A flow is a generator that yields the HTTP request to send next and receives its response; its return value is the
result. The same flow runs under ``httpx.AsyncClient`` (:func:`run_async`, which reads each answer within
:data:`MAX_RESPONSE_BYTES`) and inside an ``httpx.Auth.auth_flow`` (whose client reads the answers as it reads any
response), so the protocol is written once for sync and async callers: both step the flow with :func:`advance`.
"""

from __future__ import annotations

from collections.abc import Generator, Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from typing import Final, Generic, TypeVar

import httpx

from tokensmith.client.errors import AuthorizationServerUnavailable

T = TypeVar("T")
Flow = Generator[httpx.Request, httpx.Response, T]

# The most an authorization server's answer may take (metadata, a token response, a JWK Set): far beyond any real one.
MAX_RESPONSE_BYTES: Final = 1024 * 1024
_BODY_HEADERS: Final = frozenset({"content-encoding", "content-length", "transfer-encoding"})


@dataclass(frozen=True, slots=True)
class Done(Generic[T]):
    """A flow's return value (wrapped, so that no result can be mistaken for a request to send)."""

    value: T


def advance(flow: Flow[T], response: httpx.Response | None = None) -> httpx.Request | Done[T]:
    """Start ``flow`` (no ``response``) or give it ``response``: the next request to send, or its result."""
    try:
        return next(flow) if response is None else flow.send(response)
    except StopIteration as stop:  # with nothing sent yet: answered from a cache
        return Done(stop.value)


class ResponseTooLarge(ValueError):
    """An answer longer than its bound; its body was not read further."""


@contextmanager
def _sending(flow: Flow[T], request: httpx.Request) -> Iterator[None]:
    """Transport failures while sending ``request``, or an answer too large, end ``flow`` and become
    :class:`AuthorizationServerUnavailable`."""
    try:
        yield
    except httpx.TransportError as exc:
        flow.close()
        # Only the method, URL and exception class: the request body carries secrets and tokens.
        raise AuthorizationServerUnavailable(f"{request.method} {request.url} failed: {type(exc).__name__}") from None
    except ResponseTooLarge as exc:
        flow.close()
        raise AuthorizationServerUnavailable(f"{request.method} {exc}") from None


async def run_async(flow: Flow[T], http: httpx.AsyncClient) -> T:
    """Drive ``flow`` with an async client; transport failures and answers over :data:`MAX_RESPONSE_BYTES` become
    :class:`AuthorizationServerUnavailable`."""
    step = advance(flow)
    while not isinstance(step, Done):
        with _sending(flow, step):
            response = await receive(http, step)
        step = advance(flow, response)
    return step.value


async def receive(
    http: httpx.AsyncClient, request: httpx.Request, max_bytes: int = MAX_RESPONSE_BYTES
) -> httpx.Response:
    """The answer to ``request`` with its body read whole (decoded), or :class:`ResponseTooLarge` as soon as the
    body grows beyond ``max_bytes`` (a compressed body is bounded as decoded)."""
    streamed = await http.send(request, stream=True)
    try:
        body = bytearray()
        async for chunk in streamed.aiter_bytes():
            body += chunk
            if len(body) > max_bytes:
                raise ResponseTooLarge(f"{request.url} answered more than {max_bytes} bytes")
    finally:
        await streamed.aclose()
    # The body is decoded now: drop the headers that described it as sent.
    headers = [(name, value) for name, value in streamed.headers.multi_items() if name.lower() not in _BODY_HEADERS]
    return httpx.Response(streamed.status_code, headers=headers, content=bytes(body), request=request)
