"""DPoP end to end over HTTP: tokensmith.client binds its tokens (with server nonces), exchanges a bound token
keeping it bound, and calls a tokensmith.resource service that requires DPoP and nonces (sync and async)."""

from __future__ import annotations

import copy
from collections.abc import AsyncIterator, Iterator

import httpx
import pytest
from starlette.applications import Starlette
from starlette.requests import Request
from starlette.responses import JSONResponse
from starlette.routing import Route
from tests.client.test_against_tokensmith import SERVER, client_properties
from tests.support.fake_issuer import serve
from tests.support.server import running_server

from tokensmith import jose
from tokensmith.client import ClientCredentialsAuth, DPoPKey, TokenExchanger, TokenRequestError, load_client_properties
from tokensmith.config.server import ServerConfig
from tokensmith.resource import BearerTokenMiddleware, DPoPChecker, TokenValidator


def dpop_server() -> ServerConfig:
    data = copy.deepcopy(SERVER)
    data["dpop"] = {"nonce-required": True, "nonce-secret": "a shared secret of enough bytes"}
    clients = data["clients"]
    assert isinstance(clients, dict)
    # message-service presents the bound tokens front-end sent it, with its own proof.
    clients["message-service"]["token-exchange"] = {"dpop": {"bound-subject-token-clients": ["front-end"]}}
    return ServerConfig.model_validate(data)


@pytest.fixture(scope="module")
async def issuer() -> AsyncIterator[str]:
    async with running_server(dpop_server()) as url:
        yield url


@pytest.fixture(scope="module")
def user_service(issuer: str) -> Iterator[str]:
    validator = TokenValidator(issuer=issuer, audience="user-service", algorithms=["ES256", "RS256"])
    checker = DPoPChecker(nonces=jose.DPoPNonceSource(b"resource nonce secret!", 300))

    async def whoami(request: Request) -> JSONResponse:
        principal = request.state.principal
        return JSONResponse({"sub": principal.subject, "cnf": principal.claims.get("cnf")})

    app = Starlette(routes=[Route("/whoami", whoami)])
    app.add_middleware(BearerTokenMiddleware, validator=validator, dpop_checker=checker, dpop="required")
    with serve(app) as url:
        yield url


async def test_bound_token_call_and_exchange(issuer: str, user_service: str) -> None:
    front_key, service_key = DPoPKey(), DPoPKey()
    properties = load_client_properties(client_properties(issuer))
    async with TokenExchanger(properties, dpop=front_key) as front_end:
        incoming = await front_end.client_credentials("front-end")
        assert incoming.token_type == "DPoP"
        assert jose.parse(incoming.access_token).claims["cnf"] == {"jkt": front_key.jkt}
        # The resource server asks for its nonce first; the auth retries once with it.
        async with httpx.AsyncClient(auth=front_end.client_credentials_auth("front-end")) as http:
            answer = await http.get(f"{user_service}/whoami")
        assert answer.status_code == 200, answer.text
        assert answer.json()["cnf"] == {"jkt": front_key.jkt}

    async with TokenExchanger(properties, dpop=service_key) as message_service:
        exchanged = await message_service.exchange(incoming.access_token, registration="my-message-service")
    assert exchanged.token_type == "DPoP"
    assert jose.parse(exchanged.access_token).claims["cnf"] == {"jkt": service_key.jkt}

    async with TokenExchanger(properties) as without_key:
        with pytest.raises(TokenRequestError, match="invalid_dpop_proof"):
            await without_key.exchange(incoming.access_token, registration="my-message-service")


def test_sync_client_with_a_bound_token(issuer: str, user_service: str) -> None:
    properties = load_client_properties(client_properties(issuer))
    auth = ClientCredentialsAuth.for_registration(properties.registrations()["front-end"], dpop=DPoPKey())
    with httpx.Client(auth=auth) as http:
        answer = http.get(f"{user_service}/whoami")
        assert answer.status_code == 200, answer.text
        assert http.get(f"{user_service}/whoami").status_code == 200
