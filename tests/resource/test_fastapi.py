from __future__ import annotations

from collections.abc import AsyncIterator, Iterator
from contextlib import asynccontextmanager
from typing import Annotated

import httpx
import pytest
from fastapi import Depends, FastAPI
from tests.support.fake_issuer import FakeIssuer, free_port_url, serve

from tokensmith.resource import BearerTokenMiddleware, Principal, TokenValidator
from tokensmith.resource.fastapi import require_scopes, require_token


def build_app(issuer_url: str, *, with_middleware: bool = False) -> FastAPI:
    validator = TokenValidator(issuer=issuer_url, audience="message-service", timeout=2)

    @asynccontextmanager
    async def lifespan(app: FastAPI) -> AsyncIterator[None]:
        yield
        await validator.aclose()

    app = FastAPI(lifespan=lifespan)
    app.state.token_validator = validator
    if with_middleware:
        app.add_middleware(BearerTokenMiddleware, validator=validator)

    @app.get("/me")
    async def me(principal: Annotated[Principal, Depends(require_token())]) -> dict[str, object]:
        return {"sub": principal.subject, "client_id": principal.client_id, "act": [a.subject for a in principal.act]}

    @app.get("/messages")
    async def messages(principal: Annotated[Principal, Depends(require_scopes("message.read"))]) -> list[str]:
        return [f"hello {principal.subject}"]

    @app.get("/admin")
    async def admin(principal: Annotated[Principal, Depends(require_scopes("message.write", "admin"))]) -> str:
        return "never"

    return app


@pytest.fixture(scope="module")
def message_service(issuer_for_module: FakeIssuer) -> Iterator[str]:
    with serve(build_app(issuer_for_module.issuer), lifespan="on") as url:
        yield url


def bearer(issuer: FakeIssuer, **claims: object) -> dict[str, str]:
    return {"Authorization": f"Bearer {issuer.issue({'aud': 'message-service', **claims})}"}


async def test_require_token_gives_the_principal(issuer_for_module: FakeIssuer, message_service: str) -> None:
    async with httpx.AsyncClient() as http:
        response = await http.get(
            f"{message_service}/me", headers=bearer(issuer_for_module, act={"sub": "user-service"})
        )
    assert response.json() == {"sub": "baeldung", "client_id": "messaging-client", "act": ["user-service"]}


async def test_require_scopes_accepts_a_token_with_the_scope(
    issuer_for_module: FakeIssuer, message_service: str
) -> None:
    async with httpx.AsyncClient() as http:
        response = await http.get(
            f"{message_service}/messages", headers=bearer(issuer_for_module, scope=["message.read"])
        )
    assert response.json() == ["hello baeldung"]


async def test_missing_scope_is_403_insufficient_scope_naming_it(
    issuer_for_module: FakeIssuer, message_service: str
) -> None:
    async with httpx.AsyncClient() as http:
        response = await http.get(f"{message_service}/admin", headers=bearer(issuer_for_module))
    assert response.status_code == 403
    assert response.headers["www-authenticate"] == (
        'Bearer error="insufficient_scope", error_description="this resource needs scope message.write admin", '
        'scope="message.write admin"'
    )


async def test_missing_and_invalid_tokens_are_401(issuer_for_module: FakeIssuer, message_service: str) -> None:
    async with httpx.AsyncClient() as http:
        missing = await http.get(f"{message_service}/messages")
        wrong_audience = await http.get(
            f"{message_service}/messages", headers={"Authorization": f"Bearer {issuer_for_module.issue()}"}
        )
    assert (missing.status_code, missing.headers["www-authenticate"]) == (401, "Bearer")
    assert wrong_audience.status_code == 401
    assert wrong_audience.headers["www-authenticate"] == (
        'Bearer error="invalid_token", error_description="the token is not meant for this audience"'
    )


async def test_dependencies_reuse_the_middlewares_principal(issuer_for_module: FakeIssuer) -> None:
    with serve(build_app(issuer_for_module.issuer, with_middleware=True), lifespan="on") as url:
        async with httpx.AsyncClient() as http:
            ok = await http.get(f"{url}/messages", headers=bearer(issuer_for_module))
            refused = await http.get(f"{url}/admin", headers=bearer(issuer_for_module))
    assert ok.status_code == 200
    assert refused.status_code == 403


async def test_an_unreachable_issuer_is_503_not_401() -> None:
    with serve(build_app(free_port_url()), lifespan="on") as url:
        async with httpx.AsyncClient() as http:
            response = await http.get(
                f"{url}/me", headers={"Authorization": "Bearer eyJhbGciOiJSUzI1NiIsImtpZCI6ImsifQ.e30.c2ln"}
            )
    assert response.status_code == 503
    assert response.headers["retry-after"] == "5"
    assert response.json()["detail"]["error"] == "temporarily_unavailable"
