"""tokensmith.resource's Transaction Token validation against tokens the real tokensmith server issues over HTTP:
what it accepts, and each way a token (or the Txn-Token header) is refused."""

from __future__ import annotations

import json
import time
from collections.abc import AsyncIterator

import httpx
import pytest
from tests.server.browser import basic_auth
from tests.server.transaction_tokens.support import TRUST_DOMAIN, server_config, txn_request
from tests.support.server import running_server

from tokensmith.config.transaction_tokens import UNSIGNED_JSON_TOKEN_TYPE
from tokensmith.resource import (
    InsufficientTransactionScope,
    MissingTransactionToken,
    TransactionTokenError,
    TransactionTokenValidator,
)


@pytest.fixture(scope="module")
async def issuer(tmp_path_factory: pytest.TempPathFactory) -> AsyncIterator[str]:
    url = f"sqlite+aiosqlite:///{tmp_path_factory.mktemp('txn-resource') / 'tokensmith.db'}"
    async with running_server(server_config(url)) as base:
        yield base


@pytest.fixture(scope="module")
async def txn_token(issuer: str) -> str:
    async with httpx.AsyncClient(base_url=issuer) as http:
        response = await txn_request(
            http,
            scope="message.read",
            subject_token=json.dumps({"sub": "baeldung", "scope": "message.read"}),
            subject_token_type=UNSIGNED_JSON_TOKEN_TYPE,
            request_context=json.dumps({"req_ip": "192.0.2.1"}),
        )
        assert response.status_code == 200, response.text
        token: str = response.json()["access_token"]
        return token


@pytest.fixture
async def validator(issuer: str) -> AsyncIterator[TransactionTokenValidator]:
    found = TransactionTokenValidator(issuer=issuer, trust_domain=TRUST_DOMAIN)
    yield found
    await found.aclose()


async def test_a_valid_transaction_token(validator: TransactionTokenValidator, txn_token: str) -> None:
    token = await validator.from_headers([txn_token])
    assert token.subject == "baeldung"
    assert token.scopes == frozenset({"message.read"})
    assert token.request_context == {"req_ip": "192.0.2.1"}
    assert token.transaction_context == {}
    assert token.expires_at > time.time()
    token.require_scopes("message.read")
    with pytest.raises(InsufficientTransactionScope) as refused:
        token.require_scopes("message.write")
    assert refused.value.status_code == 403
    assert refused.value.to_dict()["error"] == "insufficient_scope"


async def test_another_trust_domain_is_refused(issuer: str, txn_token: str) -> None:
    other = TransactionTokenValidator(issuer=issuer, trust_domain="other-domain.example")
    try:
        with pytest.raises(TransactionTokenError, match="audience"):
            await other.validate(txn_token)
    finally:
        await other.aclose()


async def test_an_expired_one_is_refused(issuer: str, txn_token: str) -> None:
    later = TransactionTokenValidator(issuer=issuer, trust_domain=TRUST_DOMAIN, clock=lambda: time.time() + 3600)
    try:
        with pytest.raises(TransactionTokenError, match="expired"):
            await later.validate(txn_token)
    finally:
        await later.aclose()


async def test_an_access_token_is_not_a_transaction_token(issuer: str, validator: TransactionTokenValidator) -> None:
    """Same keys, same issuer, even the trust domain as audience: its typ is at+jwt, so it is refused."""
    async with httpx.AsyncClient(base_url=issuer) as http:
        response = await http.post(
            "/oauth2/token",
            data={"grant_type": "client_credentials", "scope": "reports.read"},
            headers=basic_auth("reporting-service", "service-secret"),
        )
        assert response.status_code == 200, response.text
    with pytest.raises(TransactionTokenError, match="type"):
        await validator.validate(response.json()["access_token"])


async def test_the_header_must_hold_exactly_one_token(validator: TransactionTokenValidator, txn_token: str) -> None:
    with pytest.raises(MissingTransactionToken):
        await validator.from_headers([])
    with pytest.raises(TransactionTokenError, match="exactly one"):
        await validator.from_headers([txn_token, txn_token])
    with pytest.raises(TransactionTokenError, match="exactly one"):
        await validator.from_headers([f"{txn_token}, {txn_token}"])
    with pytest.raises(TransactionTokenError, match="well-formed"):
        await validator.from_headers(["not-a-jwt"])
    tampered = txn_token[:-4] + ("AAAA" if not txn_token.endswith("AAAA") else "BBBB")
    with pytest.raises(TransactionTokenError):
        await validator.validate(tampered)
