"""Sans-I/O protocol flows and the two drivers that run them.

A flow is a generator that yields the HTTP request to send next and receives its response; its return value is the
result. The same flow runs under ``httpx.AsyncClient`` (:func:`run_async`), ``httpx.Client`` (:func:`run_sync`) and
inside an ``httpx.Auth.auth_flow``, so the protocol is written once for sync and async callers.
"""

from __future__ import annotations

from collections.abc import Generator
from typing import TypeVar

import httpx

from tokensmith.client.errors import AuthorizationServerUnavailable

T = TypeVar("T")
Flow = Generator[httpx.Request, httpx.Response, T]


def _unreachable(request: httpx.Request, exc: httpx.TransportError) -> AuthorizationServerUnavailable:
    # Only the method, URL and exception class: the request body carries secrets and tokens.
    return AuthorizationServerUnavailable(f"{request.method} {request.url} failed: {type(exc).__name__}")


async def run_async(flow: Flow[T], http: httpx.AsyncClient) -> T:
    """Drive ``flow`` with an async client; transport failures become :class:`AuthorizationServerUnavailable`."""
    try:
        request = next(flow)
    except StopIteration as done:  # answered from a cache, nothing to send
        first: T = done.value
        return first
    while True:
        try:
            response = await http.send(request)
        except httpx.TransportError as exc:
            flow.close()
            raise _unreachable(request, exc) from None
        try:
            request = flow.send(response)
        except StopIteration as stop:
            result: T = stop.value
            return result


def run_sync(flow: Flow[T], http: httpx.Client) -> T:
    """Drive ``flow`` with a blocking client; transport failures become :class:`AuthorizationServerUnavailable`."""
    try:
        request = next(flow)
    except StopIteration as done:  # answered from a cache, nothing to send
        first: T = done.value
        return first
    while True:
        try:
            response = http.send(request)
        except httpx.TransportError as exc:
            flow.close()
            raise _unreachable(request, exc) from None
        try:
            request = flow.send(response)
        except StopIteration as stop:
            result: T = stop.value
            return result
