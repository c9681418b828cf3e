"""DPoP-bound tokens at a resource server (RFC 9449 7): proofs, routes per mode, challenges, replays, nonces."""

from __future__ import annotations

import time
from collections.abc import AsyncIterator
from typing import Annotated, Any

import httpx
import pytest
from fastapi import Depends, FastAPI
from joserfc.jwk import ECKey
from starlette.applications import Starlette
from starlette.requests import Request
from starlette.responses import JSONResponse
from starlette.routing import Route
from tests.support.fake_issuer import FakeIssuer

from tokensmith import jose
from tokensmith.resource import BearerTokenMiddleware, DPoPChecker, MemoryReplayCache, Principal, TokenValidator
from tokensmith.resource.fastapi import require_scopes

KEY = ECKey.generate_key("P-256")
OTHER = ECKey.generate_key("P-256")
BASE = "http://testserver"


@pytest.fixture
async def validator(issuer_for_module: FakeIssuer) -> AsyncIterator[TokenValidator]:
    validator = TokenValidator(issuer=issuer_for_module.issuer, audience="message-service", timeout=2)
    yield validator
    await validator.aclose()


def fastapi_app(validator: TokenValidator, checker: DPoPChecker) -> FastAPI:
    app = FastAPI()
    app.state.token_validator = validator
    app.state.dpop_checker = checker

    @app.get("/required")
    async def required(p: Annotated[Principal, Depends(require_scopes("message.read", dpop="required"))]) -> str:
        return str(p.subject)

    @app.get("/allowed")
    async def allowed(p: Annotated[Principal, Depends(require_scopes("message.read", dpop="allowed"))]) -> str:
        return str(p.subject)

    @app.get("/off")
    async def off(p: Annotated[Principal, Depends(require_scopes("message.read"))]) -> str:
        return str(p.subject)

    return app


def token(issuer: FakeIssuer, jkt: str | None = KEY.thumbprint()) -> str:
    claims: dict[str, Any] = {"aud": "message-service", "scope": ["message.read"]}
    if jkt is not None:
        claims["cnf"] = {"jkt": jkt}
    return issuer.issue(claims)


def proof(uri: str, access_token: str, key: ECKey = KEY, method: str = "GET", **kwargs: Any) -> str:
    return jose.sign_proof(key, alg="ES256", method=method, uri=uri, access_token=access_token, **kwargs)


def dpop(uri: str, access_token: str, **kwargs: Any) -> dict[str, str]:
    return {"Authorization": f"DPoP {access_token}", "DPoP": proof(uri, access_token, **kwargs)}


async def call(app: Any, path: str, headers: dict[str, str] | list[tuple[str, str]]) -> httpx.Response:
    async with httpx.AsyncClient(transport=httpx.ASGITransport(app=app), base_url=BASE) as http:
        return await http.get(path, headers=headers)


async def test_bound_token_with_its_proof_passes(issuer_for_module: FakeIssuer, validator: TokenValidator) -> None:
    app = fastapi_app(validator, DPoPChecker())
    bound = token(issuer_for_module)
    for path in ("/required", "/allowed"):
        response = await call(app, path, dpop(f"{BASE}{path}", bound))
        assert response.status_code == 200, response.text


async def test_bound_token_as_bearer_is_invalid_token(issuer_for_module: FakeIssuer, validator: TokenValidator) -> None:
    app = fastapi_app(validator, DPoPChecker())
    bound = token(issuer_for_module)
    for path in ("/allowed", "/off"):
        response = await call(app, path, {"Authorization": f"Bearer {bound}"})
        assert response.status_code == 401
        assert response.json()["detail"]["error"] == "invalid_token"


async def test_bearer_routes_and_dpop_required_routes(issuer_for_module: FakeIssuer, validator: TokenValidator) -> None:
    app = fastapi_app(validator, DPoPChecker(algorithms=["ES256"]))
    plain = token(issuer_for_module, jkt=None)
    assert (await call(app, "/allowed", {"Authorization": f"Bearer {plain}"})).status_code == 200
    assert (await call(app, "/off", {"Authorization": f"Bearer {plain}"})).status_code == 200
    refused = await call(app, "/required", {"Authorization": f"Bearer {plain}"})
    assert refused.status_code == 401
    assert refused.headers["www-authenticate"] == 'DPoP algs="ES256"'
    missing = await call(app, "/allowed", {})
    assert missing.headers["www-authenticate"] == 'Bearer, DPoP algs="ES256"'


@pytest.mark.parametrize("case", ["wrong ath", "wrong htm", "wrong htu", "stale", "other key", "no proof", "two"])
async def test_bad_proofs_are_refused(issuer_for_module: FakeIssuer, validator: TokenValidator, case: str) -> None:
    app = fastapi_app(validator, DPoPChecker(algorithms=["ES256"]))
    bound = token(issuer_for_module)
    uri = f"{BASE}/required"
    headers: list[tuple[str, str]] = [("Authorization", f"DPoP {bound}")]
    if case == "wrong ath":
        headers.append(("DPoP", proof(uri, "another token")))
    elif case == "wrong htm":
        headers.append(("DPoP", proof(uri, bound, method="POST")))
    elif case == "wrong htu":
        headers.append(("DPoP", proof(f"{BASE}/allowed", bound)))
    elif case == "stale":
        headers.append(("DPoP", proof(uri, bound, iat=int(time.time()) - 120)))
    elif case == "other key":
        headers.append(("DPoP", proof(uri, bound, key=OTHER)))
    elif case == "two":
        headers += [("DPoP", proof(uri, bound)), ("DPoP", proof(uri, bound))]
    response = await call(app, "/required", headers)
    assert response.status_code == 401
    error = "invalid_token" if case == "other key" else "invalid_dpop_proof"
    assert response.json()["detail"]["error"] == error
    challenge = response.headers["www-authenticate"]
    assert challenge.startswith('DPoP algs="ES256"')
    assert f'error="{error}"' in challenge


async def test_replayed_proof_is_refused(issuer_for_module: FakeIssuer, validator: TokenValidator) -> None:
    app = fastapi_app(validator, DPoPChecker())
    bound = token(issuer_for_module)
    headers = dpop(f"{BASE}/required", bound)
    assert (await call(app, "/required", headers)).status_code == 200
    replay = await call(app, "/required", headers)
    assert replay.json()["detail"]["error"] == "invalid_dpop_proof"


async def test_nonce_challenge_and_retry(issuer_for_module: FakeIssuer, validator: TokenValidator) -> None:
    app = fastapi_app(validator, DPoPChecker(nonces=jose.DPoPNonceSource(b"n" * 32, 300)))
    bound = token(issuer_for_module)
    first = await call(app, "/required", dpop(f"{BASE}/required", bound))
    assert first.status_code == 401
    assert 'error="use_dpop_nonce"' in first.headers["www-authenticate"]
    nonce = first.headers["dpop-nonce"]
    retried = await call(app, "/required", dpop(f"{BASE}/required", bound, nonce=nonce))
    assert retried.status_code == 200


async def test_middleware_behind_a_proxy(issuer_for_module: FakeIssuer, validator: TokenValidator) -> None:
    async def whoami(request: Request) -> JSONResponse:
        return JSONResponse({"sub": request.state.principal.subject})

    checker = DPoPChecker(external_base_url="https://api.example.com/messages")
    app = Starlette(routes=[Route("/whoami", whoami)])
    app.add_middleware(BearerTokenMiddleware, validator=validator, dpop_checker=checker, dpop="required")
    bound = token(issuer_for_module)
    ok = await call(app, "/whoami", dpop("https://api.example.com/messages/whoami", bound))
    assert ok.status_code == 200, ok.text
    as_seen_inside = await call(app, "/whoami", dpop(f"{BASE}/whoami", bound))
    assert as_seen_inside.status_code == 401
    assert as_seen_inside.json()["error"] == "invalid_dpop_proof"


async def test_memory_replay_cache_is_bounded() -> None:
    now = [1000.0]
    cache = MemoryReplayCache(max_entries=2, clock=lambda: now[0])
    assert await cache.use("a", 1060)
    assert not await cache.use("a", 1060)
    assert await cache.use("b", 1060)
    assert await cache.use("c", 1060)
    assert len(cache) == 2
    now[0] = 2000.0
    assert await cache.use("d", 2060)
    assert len(cache) == 1
