"""Transaction Tokens over real HTTP on 127.0.0.1: the edge mints one from the user's access token, a workload
down the call chain replaces it, and every refusal is an RFC error with a reason, in the audit trail."""

from __future__ import annotations

import json
import sqlite3
import time
import uuid
from collections.abc import AsyncIterator
from datetime import UTC, datetime, timedelta
from typing import Any

import httpx
import pytest
from joserfc import jws, jwt
from joserfc.jwk import KeySet
from tests.server.browser import Browser, web_authorize_params
from tests.server.client_assertions import EC_KEY, OTHER_EC_KEY
from tests.server.exchange.http_support import MESSAGE_SERVICE, RELAY
from tests.server.transaction_tokens.support import (
    EDGE_WORKLOAD,
    TRUST_DOMAIN,
    server_config,
    txn_request,
)
from tests.support.server import newest_audit_events, running_server

from tokensmith.config.exchange import ACCESS_TOKEN_TYPE, ID_TOKEN_TYPE, REFRESH_TOKEN_TYPE
from tokensmith.config.server import TOKEN_EXCHANGE
from tokensmith.config.transaction_tokens import SELF_SIGNED_TOKEN_TYPE, TXN_TOKEN_TYPE, UNSIGNED_JSON_TOKEN_TYPE
from tokensmith.server.core.transaction_tokens import MAX_SELF_SIGNED_AGE


@pytest.fixture(scope="module")
def database_url(tmp_path_factory: pytest.TempPathFactory) -> str:
    return f"sqlite+aiosqlite:///{tmp_path_factory.mktemp('txn') / 'tokensmith.db'}"


@pytest.fixture(scope="module")
async def base_url(database_url: str) -> AsyncIterator[str]:
    async with running_server(server_config(database_url)) as url:
        yield url


@pytest.fixture
async def http(base_url: str) -> AsyncIterator[httpx.AsyncClient]:
    async with httpx.AsyncClient(base_url=base_url, follow_redirects=False, timeout=10) as client:
        yield client


@pytest.fixture(scope="module")
async def user_tokens(base_url: str) -> dict[str, str]:
    """The user's tokens as the edge receives them: an access token for user-service (scope openid profile
    message.read) and the web client's ID token."""
    async with httpx.AsyncClient(base_url=base_url, follow_redirects=False, timeout=10) as http:
        params = web_authorize_params(scope="openid profile message.read")
        body = await Browser(http).tokens(params, username="baeldung", password="password")
        return {"access_token": body["access_token"], "id_token": body["id_token"]}


async def verified(http: httpx.AsyncClient, token: str) -> tuple[dict[str, Any], dict[str, Any]]:
    jwks = KeySet.import_key_set((await http.get("/oauth2/jwks")).json())
    decoded = jwt.decode(token, jwks)
    return dict(decoded.header), dict(decoded.claims)


def self_signed(key: Any = EC_KEY, **claims: Any) -> str:
    now = int(time.time())
    body = {"iss": "user-service", "sub": "batch-job", "iat": now, "exp": now + 60, "jti": str(uuid.uuid4()), **claims}
    body = {k: v for k, v in body.items() if v is not None}
    return jws.serialize_compact({"alg": "ES256", "kid": "ec-1", "typ": "JWT"}, json.dumps(body), key)


async def test_the_edge_mints_a_transaction_token(
    http: httpx.AsyncClient, user_tokens: dict[str, str], database_url: str
) -> None:
    context = {"req_ip": "69.151.72.123", "authn": "pwd"}
    details = {"action": "read", "folder": "inbox"}
    response = await txn_request(
        http,
        subject_token=user_tokens["access_token"],
        scope="message.read",
        request_context=json.dumps(context),
        request_details=json.dumps(details),
    )
    assert response.status_code == 200, response.text
    assert response.headers["cache-control"] == "no-store"
    body = response.json()
    assert body["token_type"] == "N_A"
    assert body["issued_token_type"] == TXN_TOKEN_TYPE
    assert "refresh_token" not in body
    assert body["expires_in"] == 120
    header, claims = await verified(http, body["access_token"])
    assert header["typ"] == "txntoken+jwt"
    assert "kid" in header
    assert uuid.UUID(claims["txn"])
    assert claims["sub"] == "baeldung"
    assert claims["aud"] == TRUST_DOMAIN
    assert claims["scope"] == "message.read"
    assert claims["req_wl"] == EDGE_WORKLOAD
    assert claims["rctx"] == context
    assert claims["tctx"] == details
    assert claims["exp"] - claims["iat"] == 120
    # The access token that came in is not in the Transaction Token.
    assert user_tokens["access_token"] not in json.dumps(claims)

    (event,) = await newest_audit_events(database_url, 1)
    assert (event.outcome, event.client_id, event.subject) == ("granted", "user-service", "baeldung")
    assert event.details["mode"] == "transaction_token"
    assert event.details["txn"] == claims["txn"]
    assert event.details["req_wl"] == EDGE_WORKLOAD


async def test_each_request_is_a_new_transaction(http: httpx.AsyncClient, user_tokens: dict[str, str]) -> None:
    first = await txn_request(http, subject_token=user_tokens["access_token"], scope="message.read")
    second = await txn_request(http, subject_token=user_tokens["access_token"], scope="message.read")
    _, a = await verified(http, first.json()["access_token"])
    _, b = await verified(http, second.json()["access_token"])
    assert a["txn"] != b["txn"]
    assert "rctx" not in a
    assert "tctx" not in a


async def test_a_scope_mapping_backs_a_transaction_scope(http: httpx.AsyncClient, user_tokens: dict[str, str]) -> None:
    response = await txn_request(http, subject_token=user_tokens["access_token"], scope="profile.view message.read")
    assert response.status_code == 200, response.text
    _, claims = await verified(http, response.json()["access_token"])
    assert claims["scope"] == "profile.view message.read"


async def test_discovery_lists_the_transaction_token_types(http: httpx.AsyncClient) -> None:
    metadata = (await http.get("/.well-known/oauth-authorization-server")).json()
    assert TXN_TOKEN_TYPE in metadata["token_exchange_requested_token_types_supported"]
    assert SELF_SIGNED_TOKEN_TYPE in metadata["token_exchange_subject_token_types_supported"]
    assert TXN_TOKEN_TYPE in metadata["token_exchange_subject_token_types_supported"]


REFUSALS = [
    pytest.param({"audience": ""}, "invalid_request", "audience", id="no-audience"),
    pytest.param({"audience": "other-domain.example"}, "invalid_target", "trust domain", id="other-audience"),
    pytest.param({"audience": [TRUST_DOMAIN, "x"]}, "invalid_target", "trust domain", id="two-audiences"),
    pytest.param({"resource": "https://api.example/"}, "invalid_target", "resource", id="resource"),
    pytest.param({"scope": ""}, "invalid_request", "scope", id="no-scope"),
    pytest.param({"scope": "admin"}, "invalid_scope", "admin", id="scope-not-allowed"),
    pytest.param({"scope": 'message."read'}, "invalid_scope", "RFC 6749", id="scope-characters"),
    pytest.param({"scope": "message.write"}, "invalid_scope", "does not back", id="scope-not-backed"),
    pytest.param({"request_context": "{not json"}, "invalid_request", "not valid JSON", id="context-not-json"),
    pytest.param({"request_details": "[1, 2]"}, "invalid_request", "JSON object", id="details-not-object"),
    pytest.param(
        {"request_context": json.dumps({"req_wl_chain": ["x"]})}, "invalid_request", "call chain", id="forged-chain"
    ),
    pytest.param(
        {"request_details": json.dumps({"x": "y" * 600})}, "invalid_request", "larger than 512", id="details-too-big"
    ),
    pytest.param({"subject_token_type": REFRESH_TOKEN_TYPE}, "invalid_request", "refresh token", id="refresh-token"),
    pytest.param({"subject_token_type": ID_TOKEN_TYPE}, "invalid_request", "not accepted", id="type-not-allowed"),
    pytest.param({"subject_token": "not-a-jwt"}, "invalid_request", "subject_token", id="garbage-token"),
    pytest.param(
        {"actor_token": "x", "actor_token_type": ACCESS_TOKEN_TYPE}, "invalid_request", "actor_token", id="actor"
    ),
]


@pytest.mark.parametrize(("params", "error", "reason"), REFUSALS)
async def test_refusals_are_rfc_errors_in_the_audit_trail(
    http: httpx.AsyncClient,
    user_tokens: dict[str, str],
    database_url: str,
    params: dict[str, str | list[str]],
    error: str,
    reason: str,
) -> None:
    form: dict[str, str | list[str]] = {"subject_token": user_tokens["access_token"], "scope": "message.read"}
    form.update(params)
    response = await txn_request(http, **form)
    assert response.status_code == 400, response.text
    body = response.json()
    assert body["error"] == error
    assert reason in body["error_description"]
    (event,) = await newest_audit_events(database_url, 1)
    assert event.outcome == "refused"
    assert event.reason == f"{error}: {body['error_description']}"
    assert event.details["mode"] == "transaction_token"


async def test_a_client_not_listed_may_not_request_one(
    http: httpx.AsyncClient, user_tokens: dict[str, str], database_url: str
) -> None:
    response = await txn_request(http, RELAY, subject_token=user_tokens["access_token"], scope="message.read")
    assert response.status_code == 400
    assert response.json()["error"] == "unauthorized_client"
    (event,) = await newest_audit_events(database_url, 1)
    assert (event.outcome, event.client_id) == ("refused", "message-relay")


async def test_a_replacement_keeps_the_transaction_and_narrows_the_scope(
    http: httpx.AsyncClient, user_tokens: dict[str, str]
) -> None:
    minted = await txn_request(
        http,
        subject_token=user_tokens["access_token"],
        scope="message.read profile.view",
        request_details=json.dumps({"folder": "inbox"}),
    )
    original = minted.json()["access_token"]
    _, before = await verified(http, original)

    response = await txn_request(
        http,
        MESSAGE_SERVICE,
        subject_token=original,
        subject_token_type=TXN_TOKEN_TYPE,
        scope="message.read",
        request_details=json.dumps({"message": "42"}),
    )
    assert response.status_code == 200, response.text
    assert response.json()["token_type"] == "N_A"
    header, after = await verified(http, response.json()["access_token"])
    assert header["typ"] == "txntoken+jwt"
    assert (after["txn"], after["sub"], after["aud"]) == (before["txn"], before["sub"], before["aud"])
    assert after["scope"] == "message.read"
    assert after["req_wl"] == "message-service"
    assert after["rctx"]["req_wl_chain"] == [EDGE_WORKLOAD]
    assert after["tctx"] == {"folder": "inbox", "message": "42"}
    assert after["exp"] <= before["exp"]

    same = await txn_request(
        http, MESSAGE_SERVICE, subject_token=original, subject_token_type=TXN_TOKEN_TYPE, scope="message.read"
    )
    assert same.status_code == 200
    replaced_again = await txn_request(
        http,
        MESSAGE_SERVICE,
        subject_token=response.json()["access_token"],
        subject_token_type=TXN_TOKEN_TYPE,
        scope="message.read profile.view",
    )
    assert replaced_again.status_code == 400
    assert replaced_again.json()["error"] == "invalid_scope"
    assert "only narrow" in replaced_again.json()["error_description"]

    changed = await txn_request(
        http,
        MESSAGE_SERVICE,
        subject_token=original,
        subject_token_type=TXN_TOKEN_TYPE,
        scope="message.read",
        request_details=json.dumps({"folder": "outbox"}),
    )
    assert changed.status_code == 400
    assert "may not change tctx.folder" in changed.json()["error_description"]

    no_context = await txn_request(
        http,
        MESSAGE_SERVICE,
        subject_token=original,
        subject_token_type=TXN_TOKEN_TYPE,
        scope="message.read",
        request_context="{}",
    )
    assert no_context.status_code == 400
    assert "request_context is not accepted" in no_context.json()["error_description"]


async def test_only_a_transaction_token_can_be_replaced(http: httpx.AsyncClient, user_tokens: dict[str, str]) -> None:
    response = await txn_request(
        http,
        MESSAGE_SERVICE,
        subject_token=user_tokens["access_token"],
        subject_token_type=TXN_TOKEN_TYPE,
        scope="message.read",
    )
    assert response.status_code == 400
    assert "not a Transaction Token" in response.json()["error_description"]
    # message-service's policy accepts nothing but Transaction Tokens.
    response = await txn_request(http, MESSAGE_SERVICE, subject_token=user_tokens["access_token"], scope="message.read")
    assert response.status_code == 400
    assert "subject_token_type" in response.json()["error_description"]


async def test_a_self_signed_subject_token(http: httpx.AsyncClient, base_url: str) -> None:
    token = self_signed(aud=base_url, scope="message.read")
    response = await txn_request(
        http, subject_token=token, subject_token_type=SELF_SIGNED_TOKEN_TYPE, scope="message.read"
    )
    assert response.status_code == 200, response.text
    _, claims = await verified(http, response.json()["access_token"])
    assert (claims["sub"], claims["req_wl"]) == ("batch-job", EDGE_WORKLOAD)

    for bad, reason in [
        (self_signed(OTHER_EC_KEY, aud=base_url, scope="message.read"), "signature"),
        (self_signed(aud="https://elsewhere.example", scope="message.read"), "'aud'"),
        (self_signed(aud=base_url, iss="someone-else", scope="message.read"), "'iss'"),
        (self_signed(aud=base_url), "carries no scope"),
        (self_signed(aud=base_url, scope="message.read", iat=int(time.time()) - 3600), "fresh"),
    ]:
        refused = await txn_request(
            http, subject_token=bad, subject_token_type=SELF_SIGNED_TOKEN_TYPE, scope="message.read"
        )
        assert refused.status_code == 400, reason
        assert reason in refused.json()["error_description"], refused.json()


async def test_a_self_signed_subject_token_is_used_once(http: httpx.AsyncClient, base_url: str) -> None:
    async def send(token: str, scope: str = "message.read") -> httpx.Response:
        return await txn_request(http, subject_token=token, subject_token_type=SELF_SIGNED_TOKEN_TYPE, scope=scope)

    token = self_signed(aud=base_url, scope="message.read")
    assert (await send(token)).status_code == 200
    replayed = await send(token)
    assert replayed.status_code == 400, replayed.text
    assert replayed.json()["error"] == "invalid_request"
    assert "already used" in replayed.json()["error_description"]

    # A refused request does not use the token up.
    token = self_signed(aud=base_url, scope="message.read")
    assert (await send(token, scope="message.write")).json()["error"] == "invalid_scope"
    assert (await send(token)).status_code == 200

    missing = await send(self_signed(aud=base_url, scope="message.read", jti=None))
    assert missing.status_code == 400
    assert "'jti'" in missing.json()["error_description"]


async def test_a_self_signed_tokens_jti_is_kept_only_while_the_token_could_be_accepted(
    http: httpx.AsyncClient, base_url: str, database_url: str
) -> None:
    # Valid for a month, but refused once no longer fresh: its single-use record need not outlive freshness.
    jti = str(uuid.uuid4())
    token = self_signed(aud=base_url, scope="message.read", exp=int(time.time()) + 30 * 86400, jti=jti)
    response = await txn_request(
        http, subject_token=token, subject_token_type=SELF_SIGNED_TOKEN_TYPE, scope="message.read"
    )
    assert response.status_code == 200, response.text
    with sqlite3.connect(database_url.removeprefix("sqlite+aiosqlite:///")) as db:
        (kept_until,) = db.execute("SELECT expires_at FROM client_assertions WHERE jti = ?", (jti,)).fetchone()
    freshness_ends = datetime.now(UTC) + MAX_SELF_SIGNED_AGE + timedelta(minutes=2)
    assert datetime.fromisoformat(kept_until).replace(tzinfo=UTC) < freshness_ends


async def test_an_unsigned_json_subject_token(http: httpx.AsyncClient) -> None:
    subject = json.dumps({"sub": "scheduler", "scope": "message.read"})
    response = await txn_request(
        http, subject_token=subject, subject_token_type=UNSIGNED_JSON_TOKEN_TYPE, scope="message.read"
    )
    assert response.status_code == 200, response.text
    _, claims = await verified(http, response.json()["access_token"])
    assert claims["sub"] == "scheduler"
    for bad, reason in [("[1]", "JSON object"), ("{", "not valid JSON"), ('{"scope": "message.read"}', "'sub'")]:
        refused = await txn_request(
            http, subject_token=bad, subject_token_type=UNSIGNED_JSON_TOKEN_TYPE, scope="message.read"
        )
        assert refused.status_code == 400
        assert reason in refused.json()["error_description"]


async def test_a_transaction_token_is_no_access_token(http: httpx.AsyncClient, user_tokens: dict[str, str]) -> None:
    """Presented as the subject of an ordinary exchange, a Transaction Token is refused (its typ is not at+jwt
    and it has no client_id)."""
    minted = await txn_request(http, subject_token=user_tokens["access_token"], scope="message.read")
    response = await http.post(
        "/oauth2/token",
        data={
            "grant_type": TOKEN_EXCHANGE,
            "subject_token": minted.json()["access_token"],
            "subject_token_type": ACCESS_TOKEN_TYPE,
        },
        headers=MESSAGE_SERVICE,
    )
    assert response.status_code == 400
    assert response.json()["error"] == "invalid_request"
