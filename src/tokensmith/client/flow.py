"""Sans-I/O protocol flows and the two drivers that run them.

A flow is a generator that yields the HTTP request to send next and receives its response; its return value is the
result. The same flow runs under ``httpx.AsyncClient`` (:func:`run_async`), ``httpx.Client`` (:func:`run_sync`) and
inside an ``httpx.Auth.auth_flow``, so the protocol is written once for sync and async callers: every driver steps
the flow with :func:`advance` and differs only in how it sends a request.
"""

from __future__ import annotations

from collections.abc import Generator, Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from typing import Generic, TypeVar

import httpx

from tokensmith.client.errors import AuthorizationServerUnavailable

T = TypeVar("T")
Flow = Generator[httpx.Request, httpx.Response, T]


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


@contextmanager
def _sending(flow: Flow[T], request: httpx.Request) -> Iterator[None]:
    """Transport failures while sending ``request`` end ``flow`` and become :class:`AuthorizationServerUnavailable`."""
    try:
        yield
    except httpx.TransportError as exc:
        flow.close()
        # Only the method, URL and exception class: the request body carries secrets and tokens.
        raise AuthorizationServerUnavailable(f"{request.method} {request.url} failed: {type(exc).__name__}") from None


async def run_async(flow: Flow[T], http: httpx.AsyncClient) -> T:
    """Drive ``flow`` with an async client; transport failures become :class:`AuthorizationServerUnavailable`."""
    step = advance(flow)
    while not isinstance(step, Done):
        with _sending(flow, step):
            response = await http.send(step)
        step = advance(flow, response)
    return step.value


def run_sync(flow: Flow[T], http: httpx.Client) -> T:
    """Drive ``flow`` with a blocking client; transport failures become :class:`AuthorizationServerUnavailable`."""
    step = advance(flow)
    while not isinstance(step, Done):
        with _sending(flow, step):
            response = http.send(step)
        step = advance(flow, response)
    return step.value
