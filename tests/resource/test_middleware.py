from __future__ import annotations

import time
from collections.abc import AsyncIterator, Iterator
from contextlib import asynccontextmanager

import httpx
import pytest
from starlette.applications import Starlette
from starlette.requests import Request
from starlette.responses import JSONResponse
from starlette.routing import Route
from tests.support.fake_issuer import FakeIssuer, serve

from tokensmith.resource import BearerTokenMiddleware, Principal, TokenValidator


async def whoami(request: Request) -> JSONResponse:
    principal = getattr(request.state, "principal", None)
    if not isinstance(principal, Principal):
        return JSONResponse({"anonymous": True})
    return JSONResponse({"sub": principal.subject, "scopes": sorted(principal.scopes)})


async def health(request: Request) -> JSONResponse:
    return JSONResponse({"ok": True})


def build_app(issuer_url: str, *, required: bool = True) -> Starlette:
    validator = TokenValidator(issuer=issuer_url, audience="user-service")

    @asynccontextmanager
    async def lifespan(app: Starlette) -> AsyncIterator[None]:
        yield
        await validator.aclose()

    app = Starlette(routes=[Route("/whoami", whoami), Route("/health", health)], lifespan=lifespan)
    app.add_middleware(
        BearerTokenMiddleware, validator=validator, realm="user-service", required=required, public_paths=["/health"]
    )
    return app


@pytest.fixture(scope="module")
def service(issuer_for_module: FakeIssuer) -> Iterator[str]:
    with serve(build_app(issuer_for_module.issuer), lifespan="on") as url:
        yield url


@pytest.fixture(scope="module")
def lenient_service(issuer_for_module: FakeIssuer) -> Iterator[str]:
    with serve(build_app(issuer_for_module.issuer, required=False), lifespan="on") as url:
        yield url


async def test_a_valid_token_reaches_the_handler_with_its_principal(
    issuer_for_module: FakeIssuer, service: str
) -> None:
    async with httpx.AsyncClient() as http:
        response = await http.get(f"{service}/whoami", headers={"Authorization": f"Bearer {issuer_for_module.issue()}"})
    assert response.status_code == 200
    assert response.json() == {"sub": "baeldung", "scopes": ["message.read", "openid"]}


async def test_missing_token_is_401_without_an_error_code(service: str) -> None:
    async with httpx.AsyncClient() as http:
        for headers in ({}, {"Authorization": "Basic dXNlcjpwYXNz"}):
            response = await http.get(f"{service}/whoami", headers=headers)
            assert response.status_code == 401
            assert response.headers["www-authenticate"] == 'Bearer realm="user-service"'
            assert response.headers["cache-control"] == "no-store"


@pytest.mark.parametrize(
    ("authorization", "description"),
    [
        ("Bearer not-a-jwt", "the token is not a well-formed JWT"),
        ("Bearer two tokens", "the Authorization header does not carry a well-formed bearer token"),
        ("Bearer", "the Authorization header does not carry a well-formed bearer token"),
        ("expired", "the token has expired"),
        ("wrong-audience", "the token is not meant for this audience"),
    ],
)
async def test_bad_tokens_are_401_invalid_token_per_rfc6750(
    issuer_for_module: FakeIssuer, service: str, authorization: str, description: str
) -> None:
    if authorization == "expired":
        authorization = f"Bearer {issuer_for_module.issue(now=time.time() - 600)}"
    elif authorization == "wrong-audience":
        authorization = f"Bearer {issuer_for_module.issue({'aud': 'message-service'})}"
    async with httpx.AsyncClient() as http:
        response = await http.get(f"{service}/whoami", headers={"Authorization": authorization})
    assert response.status_code == 401
    assert response.headers["www-authenticate"] == (
        f'Bearer realm="user-service", error="invalid_token", error_description="{description}"'
    )
    assert response.json() == {"error": "invalid_token", "error_description": description}


async def test_public_paths_and_optional_authentication(
    issuer_for_module: FakeIssuer, service: str, lenient_service: str
) -> None:
    async with httpx.AsyncClient() as http:
        assert (await http.get(f"{service}/health")).status_code == 200
        assert (await http.get(f"{lenient_service}/whoami")).json() == {"anonymous": True}
        refused = await http.get(f"{lenient_service}/whoami", headers={"Authorization": "Bearer garbage"})
        assert refused.status_code == 401  # optional means "may be absent", not "may be invalid"
