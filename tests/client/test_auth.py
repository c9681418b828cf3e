from __future__ import annotations

import asyncio
from collections.abc import Iterator
from dataclasses import dataclass, field

import httpx
import pytest
from starlette.applications import Starlette
from starlette.requests import Request
from starlette.responses import JSONResponse
from starlette.routing import Route
from tests.client.helpers import credentials_registration, exchange_registration
from tests.support.fake_issuer import FakeIssuer, serve

from tokensmith.client import ClientCredentialsAuth, TokenExchangeAuth, TokenExchanger, TokenRequestError


@dataclass
class Downstream:
    """A message-service stand-in: accepts tokens the current fake issuer signed, except those it revoked."""

    issuer: FakeIssuer | None = None
    revoked: set[str] = field(default_factory=set)
    seen: list[str] = field(default_factory=list)
    refuse_all: bool = False

    async def message(self, request: Request) -> JSONResponse:
        token = request.headers.get("authorization", "").removeprefix("Bearer ")
        self.seen.append(token)
        claims = self.issuer.verify(token) if self.issuer else None
        if claims is None or token in self.revoked or self.refuse_all:
            return JSONResponse({"error": "invalid_token"}, status_code=401)
        return JSONResponse({"sub": claims["sub"], "aud": claims["aud"]})


@pytest.fixture(scope="module")
def downstream_server() -> Iterator[tuple[Downstream, str]]:
    downstream = Downstream()
    with serve(Starlette(routes=[Route("/message", downstream.message)])) as url:
        yield downstream, url


@pytest.fixture
def downstream(downstream_server: tuple[Downstream, str], issuer: FakeIssuer) -> tuple[Downstream, str]:
    state, url = downstream_server
    state.issuer, state.revoked, state.seen, state.refuse_all = issuer, set(), [], False
    return state, url


async def test_auth_for_sends_the_exchanged_token(issuer: FakeIssuer, downstream: tuple[Downstream, str]) -> None:
    state, url = downstream
    subject = issuer.issue()
    async with TokenExchanger([exchange_registration(issuer)]) as exchanger, httpx.AsyncClient() as http:
        auth = exchanger.auth_for(subject, registration="my-message-service", audience="message-service")
        first = await http.get(f"{url}/message", auth=auth)
        second = await http.get(
            f"{url}/message",
            auth=exchanger.auth_for(subject, registration="my-message-service", audience="message-service"),
        )
    assert first.json() == {"sub": "baeldung", "aud": ["message-service"]}
    assert second.status_code == 200
    assert issuer.hits["/token"] == 1  # the second auth shares the exchanger's cache
    assert state.seen[0] != subject


async def test_concurrent_async_requests_through_auth_for_share_one_exchange(
    issuer: FakeIssuer, downstream: tuple[Downstream, str]
) -> None:
    _, url = downstream
    issuer.token_delay = 0.2
    subject = issuer.issue()
    async with TokenExchanger([exchange_registration(issuer)]) as exchanger, httpx.AsyncClient() as http:
        responses = await asyncio.gather(
            *(
                http.get(f"{url}/message", auth=exchanger.auth_for(subject, registration="my-message-service"))
                for _ in range(30)
            )
        )
    assert {r.status_code for r in responses} == {200}
    assert issuer.hits["/token"] == 1


async def test_a_401_from_the_resource_gets_one_fresh_token_and_one_retry(
    issuer: FakeIssuer, downstream: tuple[Downstream, str]
) -> None:
    state, url = downstream
    subject = issuer.issue()
    async with TokenExchanger([exchange_registration(issuer)]) as exchanger, httpx.AsyncClient() as http:
        cached = await exchanger.exchange(subject, registration="my-message-service")
        state.revoked.add(cached.access_token)
        response = await http.get(f"{url}/message", auth=exchanger.auth_for(subject, registration="my-message-service"))
        assert response.status_code == 200
        assert issuer.hits["/token"] == 2
        state.refuse_all = True  # every token is refused: exactly one retry, then the 401 stands
        response = await http.get(f"{url}/message", auth=exchanger.auth_for(subject, registration="my-message-service"))
    assert response.status_code == 401
    assert len(state.seen) == 4


async def test_refused_exchange_surfaces_from_the_async_auth(
    issuer: FakeIssuer, downstream: tuple[Downstream, str]
) -> None:
    _, url = downstream
    issuer.token_error = (400, {"error": "invalid_target"})
    async with TokenExchanger([exchange_registration(issuer)]) as exchanger, httpx.AsyncClient() as http:
        with pytest.raises(TokenRequestError, match="invalid_target"):
            await http.get(f"{url}/message", auth=exchanger.auth_for(issuer.issue(), registration="my-message-service"))


def test_sync_client_credentials_auth_uses_the_same_flow(
    issuer: FakeIssuer, downstream: tuple[Downstream, str]
) -> None:
    state, url = downstream
    auth = ClientCredentialsAuth.for_registration(credentials_registration(issuer))
    with httpx.Client(auth=auth) as http:
        assert http.get(f"{url}/message").json()["sub"] == "reporting"
        assert http.get(f"{url}/message").status_code == 200
        assert issuer.hits["/token"] == 1
        state.revoked.add(state.seen[-1])
        assert http.get(f"{url}/message").status_code == 200  # 401 -> fresh token -> retried
    assert issuer.hits["/token"] == 2
    assert issuer.hits["/.well-known/openid-configuration"] == 1


def test_sync_token_exchange_auth(issuer: FakeIssuer, downstream: tuple[Downstream, str]) -> None:
    _, url = downstream
    auth = TokenExchangeAuth.for_registration(issuer.issue(), exchange_registration(issuer), audience="message-service")
    with httpx.Client() as http:
        response = http.get(f"{url}/message", auth=auth)
    assert response.json() == {"sub": "baeldung", "aud": ["message-service"]}


async def test_standalone_async_auth_fetches_once_for_concurrent_requests(
    issuer: FakeIssuer, downstream: tuple[Downstream, str]
) -> None:
    _, url = downstream
    issuer.token_delay = 0.2
    auth = ClientCredentialsAuth.for_registration(credentials_registration(issuer))
    async with httpx.AsyncClient(auth=auth) as http:
        responses = await asyncio.gather(*(http.get(f"{url}/message") for _ in range(20)))
    assert {r.status_code for r in responses} == {200}
    assert issuer.hits["/token"] == 1
