"""Transaction Tokens end to end: the edge (tokensmith.client) mints one at the real tokensmith server over HTTP and
sends it in ``Txn-Token``; the workload behind it (tokensmith.resource) checks it and reads its claims; a workload
further down replaces it with a narrower one."""

from __future__ import annotations

import json
from collections.abc import AsyncIterator

import httpx
import pytest
from starlette.applications import Starlette
from starlette.requests import Request
from starlette.responses import JSONResponse
from starlette.routing import Route
from tests.server.transaction_tokens.support import TRUST_DOMAIN, server_config
from tests.support.server import running_server

from tokensmith.client import (
    TOKEN_EXCHANGE,
    TXN_TOKEN_TYPE,
    Registration,
    TokenExchanger,
    TokenRequestError,
    TransactionTokenAuth,
    TransactionTokenMinter,
    txn_token_headers,
)
from tokensmith.resource import TransactionToken, TransactionTokenMiddleware, TransactionTokenValidator

UNSIGNED_JSON = "urn:ietf:params:oauth:token-type:unsigned_json"


@pytest.fixture(scope="module")
async def issuer(tmp_path_factory: pytest.TempPathFactory) -> AsyncIterator[str]:
    url = f"sqlite+aiosqlite:///{tmp_path_factory.mktemp('txn-client') / 'tokensmith.db'}"
    async with running_server(server_config(url)) as base:
        yield base


@pytest.fixture
async def exchanger(issuer: str) -> AsyncIterator[TokenExchanger]:
    registrations = [
        Registration(
            registration_id="edge",
            client_id="user-service",
            client_secret="edge-secret",
            authorization_grant_type=TOKEN_EXCHANGE,
            issuer_uri=issuer,
        ),
        Registration(
            registration_id="messages",
            client_id="message-service",
            client_secret="token",
            authorization_grant_type=TOKEN_EXCHANGE,
            issuer_uri=issuer,
        ),
    ]
    async with TokenExchanger(registrations) as found:
        yield found


def workload(validator: TransactionTokenValidator) -> Starlette:
    async def messages(request: Request) -> JSONResponse:
        token: TransactionToken = request.state.txn_token
        token.require_scopes("message.read")
        return JSONResponse(
            {
                "txn": token.txn,
                "sub": token.subject,
                "req_wl": token.workload,
                "tctx": dict(token.transaction_context),
                "token": token.token,
            }
        )

    app = Starlette(routes=[Route("/messages", messages)])
    app.add_middleware(TransactionTokenMiddleware, validator=validator)
    return app


async def test_mint_at_the_edge_forward_and_check(issuer: str, exchanger: TokenExchanger) -> None:
    minter = TransactionTokenMinter(exchanger, registration="edge", trust_domain=TRUST_DOMAIN)
    minted = await minter.mint(
        json.dumps({"sub": "baeldung", "scope": "message.read"}),
        subject_token_type=UNSIGNED_JSON,
        scope="message.read",
        request_details={"folder": "inbox"},
    )
    assert minted.issued_token_type == TXN_TOKEN_TYPE
    assert minted.token_type == "N_A"

    validator = TransactionTokenValidator(issuer=issuer, trust_domain=TRUST_DOMAIN)
    try:
        transport = httpx.ASGITransport(app=workload(validator))
        async with httpx.AsyncClient(transport=transport, base_url="http://message-service") as http:
            response = await http.get("/messages", auth=TransactionTokenAuth(minted))
            assert response.status_code == 200, response.text
            body = response.json()
            assert body["sub"] == "baeldung"
            assert body["req_wl"] == "user-service.trust-domain.example"
            assert body["tctx"] == {"folder": "inbox"}
            # What this workload forwards downstream is the token as received.
            assert txn_token_headers(body["token"]) == {"Txn-Token": minted.access_token}

            # Further down, message-service replaces it: same transaction, narrower (here equal) scope.
            replaced = await TransactionTokenMinter(
                exchanger, registration="messages", trust_domain=TRUST_DOMAIN
            ).replace(minted.access_token, scope="message.read")
            again = await http.get("/messages", headers=txn_token_headers(replaced))
            assert again.status_code == 200
            assert again.json()["txn"] == body["txn"]
            assert again.json()["req_wl"] == "message-service"

            missing = await http.get("/messages")
            assert missing.status_code == 401
            assert missing.json()["error"] == "invalid_token"
            assert "Txn-Token" in missing.json()["error_description"]
    finally:
        await validator.aclose()


async def test_a_refused_request_is_a_token_request_error(exchanger: TokenExchanger) -> None:
    minter = TransactionTokenMinter(exchanger, registration="edge", trust_domain=TRUST_DOMAIN)
    with pytest.raises(TokenRequestError) as refused:
        await minter.mint(json.dumps({"sub": "baeldung"}), subject_token_type=UNSIGNED_JSON, scope="admin")
    assert refused.value.error == "invalid_scope"
    with pytest.raises(TokenRequestError) as refused:
        await TransactionTokenMinter(exchanger, registration="edge", trust_domain="elsewhere.example").mint(
            json.dumps({"sub": "baeldung", "scope": "message.read"}),
            subject_token_type=UNSIGNED_JSON,
            scope="message.read",
        )
    assert refused.value.error == "invalid_target"


async def test_transaction_tokens_are_never_cached(exchanger: TokenExchanger) -> None:
    minter = TransactionTokenMinter(exchanger, registration="edge", trust_domain=TRUST_DOMAIN)
    subject = json.dumps({"sub": "baeldung", "scope": "message.read"})
    first = await minter.mint(subject, subject_token_type=UNSIGNED_JSON, scope="message.read")
    second = await minter.mint(subject, subject_token_type=UNSIGNED_JSON, scope="message.read")
    assert first.access_token != second.access_token
