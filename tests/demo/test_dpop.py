"""The DPoP variant (`tokensmith demo --dpop`): the article's flow with every token bound to its holder's key.

The client app's token is bound to the client app's key; user-service presents it with the client app's proof,
exchanges it with a proof by its own key (the exchanged token is bound to user-service's key) and calls
message-service with a proof by that key. Stolen tokens, sent without the right key's proof, are refused.
"""

from __future__ import annotations

from collections.abc import AsyncIterator

import httpx
import pytest_asyncio
from tests.demo.support import SCOPE_TESTER, USER_SERVICE_CLIENT, expired_token, logged_in_check

from tokensmith.client import DPoPKey
from tokensmith.demo.check import FlowCheck, StepResult
from tokensmith.demo.client_app import ClientApp
from tokensmith.demo.html_scrape import element_text, token_claims
from tokensmith.demo.runner import DemoSystem, banner
from tokensmith.demo.sessions import COOKIE_NAME, Session
from tokensmith.demo.token_view import view_token
from tokensmith.demo.user_service import UserService


@pytest_asyncio.fixture(loop_scope="session")
async def http() -> AsyncIterator[httpx.AsyncClient]:
    async with httpx.AsyncClient(trust_env=False) as client:
        yield client


def _client_app(system: DemoSystem) -> ClientApp:
    client_app: ClientApp = system.apps["client app"].state.client_app  # type: ignore[attr-defined]
    return client_app


def _user_service(system: DemoSystem) -> UserService:
    service: UserService = system.apps["user-service"].state.user_service  # type: ignore[attr-defined]
    return service


def _session(system: DemoSystem, sid: str | None) -> Session:
    session = _client_app(system).sessions.get(sid)
    assert session is not None
    return session


async def _user_token(system: DemoSystem) -> str:
    """A logged-in user's access token (bound to the client app's key), as the client app holds it."""
    check = await logged_in_check(system)
    try:
        token = _session(system, check.http.cookies.get(COOKIE_NAME)).access_token
    finally:
        await check.aclose()
    assert token is not None
    return token


async def test_every_step_holds_with_both_tokens_bound_each_to_its_holders_key(dpop_demo_system: DemoSystem) -> None:
    results: list[StepResult] = []
    assert await FlowCheck(dpop_demo_system.topology, dpop=True).run(results.append), [r.line() for r in results]
    assert [r.ok for r in results] == [True] * 7
    client_key = _client_app(dpop_demo_system).dpop
    service_key = _user_service(dpop_demo_system).dpop
    assert client_key is not None
    assert service_key is not None
    bound = f"bound: your token cnf.jkt {client_key.jkt}, exchanged token cnf.jkt {service_key.jkt}"
    assert bound in results[3].detail
    assert "'Hello baeldung, from message-service'" in results[3].detail
    assert bound in results[4].detail  # delegation: `act` and `cnf` together
    assert "'sub': 'user-service'" in results[4].detail


async def test_the_page_shows_the_cnf_of_both_tokens(dpop_demo_system: DemoSystem) -> None:
    check = await logged_in_check(dpop_demo_system)
    try:
        page = await check.http.get(dpop_demo_system.topology.client_url + "/api/user/message")
        home = await check.http.get(dpop_demo_system.topology.client_url + "/")
    finally:
        await check.aclose()
    assert page.status_code == 200, page.text
    assert element_text(page.text, "dpop") == "DPoP-bound"
    assert "bound to this app's key" in (element_text(home.text, "dpop") or "")
    original, exchanged = token_claims(page.text, "original-token"), token_claims(page.text, "exchanged-token")
    assert original is not None
    assert exchanged is not None
    for section, claims in (("original-token", original), ("exchanged-token", exchanged)):
        shown = page.text.split(f'id="{section}"')[1].split("</section>")[0]
        assert f"&quot;jkt&quot;: &quot;{claims['cnf']['jkt']}&quot;" in shown.split('class="cnf"')[1]
    assert original["cnf"] != exchanged["cnf"]


async def test_a_check_expecting_dpop_fails_against_the_bearer_demo(demo_system: DemoSystem) -> None:
    results: list[StepResult] = []
    assert not await FlowCheck(demo_system.topology, dpop=True).run(results.append)
    assert results[-1].line().startswith("[4/7] FAIL GET /api/user/message (impersonation): your token is not DPoP")


async def test_the_bearer_demo_shows_no_binding(demo_system: DemoSystem) -> None:
    check = await logged_in_check(demo_system)
    try:
        page = await check.http.get(demo_system.topology.client_url + "/api/user/message")
    finally:
        await check.aclose()
    assert page.status_code == 200
    assert 'class="cnf"' not in page.text
    assert element_text(page.text, "dpop") is None
    assert "DPoP" not in banner(demo_system)


async def test_the_banner_names_the_dpop_variant(dpop_demo_system: DemoSystem) -> None:
    assert banner(dpop_demo_system).startswith("DPoP variant:")


async def test_a_stolen_bound_token_is_refused_without_its_keys_proof(
    dpop_demo_system: DemoSystem, http: httpx.AsyncClient
) -> None:
    token = await _user_token(dpop_demo_system)
    url = dpop_demo_system.topology.user_service_url + "/user/message"
    as_bearer = await http.get(url, headers={"Authorization": f"Bearer {token}"})
    assert as_bearer.status_code == 401
    no_proof = await http.get(url, headers={"Authorization": f"DPoP {token}"})
    assert no_proof.status_code == 401
    assert 'error="invalid_dpop_proof"' in no_proof.headers["www-authenticate"]
    thief = DPoPKey()
    other_key = await http.get(
        url, headers={"Authorization": f"DPoP {token}", "DPoP": thief.proof("GET", url, access_token=token)}
    )
    assert other_key.status_code == 401
    # With the client app's key (what the client app does), the same token goes through.
    key = _client_app(dpop_demo_system).dpop
    assert key is not None
    good = await http.get(
        url, headers={"Authorization": f"DPoP {token}", "DPoP": key.proof("GET", url, access_token=token)}
    )
    assert good.status_code == 200, good.text
    assert good.text == "Hello baeldung, from message-service"


async def test_the_resource_servers_take_dpop_bound_tokens_only(
    dpop_demo_system: DemoSystem, http: httpx.AsyncClient
) -> None:
    # scope-tester is not one of the demo's clients: its client-credentials token is a bearer token.
    response = await http.post(
        dpop_demo_system.topology.issuer + "/oauth2/token", data={"grant_type": "client_credentials"}, auth=SCOPE_TESTER
    )
    bearer = response.json()["access_token"]
    assert "cnf" not in view_token(bearer).claims
    refused = await http.get(
        dpop_demo_system.topology.message_service_url + "/message", headers={"Authorization": f"Bearer {bearer}"}
    )
    assert refused.status_code == 401
    assert refused.headers["www-authenticate"].startswith("DPoP ")


async def test_the_demos_clients_get_no_token_without_a_proof(
    dpop_demo_system: DemoSystem, http: httpx.AsyncClient
) -> None:
    response = await http.post(
        dpop_demo_system.topology.issuer + "/oauth2/token",
        data={"grant_type": "client_credentials"},
        auth=USER_SERVICE_CLIENT,
    )
    assert response.status_code == 400
    assert response.json()["error"] == "invalid_dpop_proof"


async def test_an_expiring_token_is_refreshed_with_a_proof_and_comes_back_bound(dpop_demo_system: DemoSystem) -> None:
    check = await logged_in_check(dpop_demo_system)
    try:
        session = _session(dpop_demo_system, check.http.cookies.get(COOKIE_NAME))
        stale = session.access_token = await expired_token(dpop_demo_system, "user-service", ("openid", "user.read"))
        page = await check.http.get(dpop_demo_system.topology.client_url + "/api/user/message")
        assert page.status_code == 200, page.text
        assert session.access_token not in (None, stale)
        key = _client_app(dpop_demo_system).dpop
        assert key is not None
        assert view_token(session.access_token or "").claims["cnf"] == {"jkt": key.jkt}
    finally:
        await check.aclose()
