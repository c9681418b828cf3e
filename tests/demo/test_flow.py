"""The runner's flow, as `tokensmith demo --check` runs it, against the four services on free ports."""

from __future__ import annotations

import re

import httpx
from tests.demo.support import USER_SERVICE_CLIENT, client_credentials_token

from tokensmith.demo.check import FlowCheck, StepResult
from tokensmith.demo.runner import DemoSystem


async def test_every_step_of_the_articles_flow_holds(demo_system: DemoSystem) -> None:
    results: list[StepResult] = []
    assert await FlowCheck(demo_system.topology).run(results.append), [r.line() for r in results]
    assert [r.ok for r in results] == [True] * 7
    by_name = {r.name: r.detail for r in results}
    assert "subject baeldung, azp messaging-client" in by_name["log in as baeldung"]
    impersonation = by_name["GET /api/user/message (impersonation)"]
    assert "'Hello baeldung, from message-service'" in impersonation
    assert "sub baeldung, aud message-service, scope message.read" in impersonation
    assert "'sub': 'user-service'" in by_name["GET /api/user/message?mode=delegation"]
    transaction = by_name["GET /api/user/message?mode=transaction-token"]
    assert "Transaction Token: sub baeldung, aud demo.trust-domain, scope message.read" in transaction


async def test_the_check_fails_and_stops_at_the_step_that_breaks(demo_system: DemoSystem) -> None:
    results: list[StepResult] = []
    assert not await FlowCheck(demo_system.topology, password="not-the-password").run(results.append)
    assert [r.ok for r in results] == [True, True, False]
    assert results[-1].line().startswith("[3/7] FAIL log in as baeldung")


async def test_the_issuer_is_localhost_on_the_bound_port(demo_system: DemoSystem) -> None:
    topology = demo_system.topology
    assert topology.host == "127.0.0.1"
    assert topology.issuer == f"http://localhost:{topology.as_port}"
    assert demo_system.server_config is not None
    assert demo_system.server_config.issuer == topology.issuer


async def test_user_service_answers_with_message_services_text_as_in_the_article(demo_system: DemoSystem) -> None:
    token = await client_credentials_token(demo_system, USER_SERVICE_CLIENT)  # sub user-service, aud user-service
    async with httpx.AsyncClient(trust_env=False) as http:
        url = demo_system.topology.user_service_url + "/user/message"
        text = await http.get(url, headers={"Authorization": f"Bearer {token}"})
        described = await http.get(url, headers={"Authorization": f"Bearer {token}", "Accept": "application/json"})
    assert text.status_code == 200
    assert text.headers["content-type"].startswith("text/plain")
    assert text.text == "Hello user-service, from message-service"
    body = described.json()
    assert body["message"] == text.text
    assert body["exchanged_token"]["claims"]["aud"] == "message-service"
    # The exchanged token is described, never handed out: no JWT-shaped string anywhere in the answer.
    assert not re.search(r"eyJ[\w-]+\.[\w-]+\.[\w-]+", described.text)


async def test_message_service_checks_the_txn_token_header(demo_system: DemoSystem) -> None:
    """GET /message/transaction wants a Transaction Token of the demo's trust domain, nothing else."""
    token = await client_credentials_token(demo_system, USER_SERVICE_CLIENT)  # an access token, typ JWT
    url = demo_system.topology.message_service_url + "/message/transaction"
    async with httpx.AsyncClient(trust_env=False) as http:
        missing = await http.get(url, headers={"Authorization": f"Bearer {token}"})
        access_token = await http.get(url, headers={"Txn-Token": token})
    assert missing.status_code == 401
    assert "Txn-Token" in missing.json()["error_description"]
    assert access_token.status_code == 401
    assert access_token.json()["error"] == "invalid_token"
