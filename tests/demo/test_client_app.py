"""The client app when the user's token goes stale or is refused, and its session cookie."""

from __future__ import annotations

import asyncio

import httpx
import pytest
from tests.demo.support import SCOPE_TESTER, client_credentials_token, expired_token, logged_in_check

from tokensmith.demo.client_app import ClientApp
from tokensmith.demo.html_scrape import element_text
from tokensmith.demo.runner import DemoSystem
from tokensmith.demo.sessions import COOKIE_NAME, Session


def _session(system: DemoSystem, sid: str | None) -> Session:
    client_app: ClientApp = system.apps["client app"].state.client_app  # type: ignore[attr-defined]
    session = client_app.sessions.get(sid)
    assert session is not None
    return session


async def test_the_session_cookie_is_httponly_and_lax_and_holds_no_token(demo_system: DemoSystem) -> None:
    async with httpx.AsyncClient(trust_env=False) as http:
        response = await http.get(demo_system.topology.client_url + "/")
    header = response.headers["set-cookie"]
    assert header.startswith(COOKIE_NAME + "=")
    assert "httponly" in header.lower()
    assert "samesite=lax" in header.lower()
    assert "." not in header.split(";")[0]  # a random id, not a JWT


@pytest.mark.parametrize("refresh_token", [None, "not-a-refresh-token"], ids=["none", "refused"])
async def test_an_expired_token_without_a_usable_refresh_token_means_a_silent_new_login(
    demo_system: DemoSystem, refresh_token: str | None
) -> None:
    check = await logged_in_check(demo_system)
    try:
        session = _session(demo_system, check.http.cookies.get(COOKIE_NAME))
        session.access_token = await expired_token(demo_system, "user-service", ("openid", "user.read"))
        session.refresh_token = refresh_token
        response = await check.http.get(demo_system.topology.client_url + "/api/user/message")
        # Off to the authorization server, whose session still stands: no login form, straight back with a new token.
        assert response.status_code == 302
        assert response.headers["location"].startswith(demo_system.topology.issuer + "/oauth2/authorize")
        page = await check.follow(response)
        assert page.status_code == 200
        assert str(page.url) == demo_system.topology.client_url + "/api/user/message"
        assert element_text(page.text, "message") == "Hello baeldung, from message-service"
    finally:
        await check.aclose()


async def test_a_refused_token_shows_401_and_the_next_visit_logs_in_again(demo_system: DemoSystem) -> None:
    check = await logged_in_check(demo_system)
    try:
        session = _session(demo_system, check.http.cookies.get(COOKIE_NAME))
        session.access_token = await client_credentials_token(demo_system, SCOPE_TESTER)  # aud message-service
        page = await check.http.get(demo_system.topology.client_url + "/api/user/message")
        assert page.status_code == 401
        assert "user-service refused your token" in (element_text(page.text, "error-detail") or "")
        again = await check.http.get(demo_system.topology.client_url + "/")
        assert again.status_code == 302
        assert again.headers["location"].startswith(demo_system.topology.issuer)
    finally:
        await check.aclose()


async def test_an_expiring_token_is_refreshed_without_a_new_login(demo_system: DemoSystem) -> None:
    """As Spring's client does: the refresh token from the login buys a new access token (and, rotated, a new
    refresh token) with no trip through the browser."""
    check = await logged_in_check(demo_system)
    try:
        session = _session(demo_system, check.http.cookies.get(COOKIE_NAME))
        spent = session.refresh_token
        assert spent is not None  # the login's token response carried one
        stale = session.access_token = await expired_token(demo_system, "user-service", ("openid", "user.read"))
        page = await check.http.get(demo_system.topology.client_url + "/api/user/message")
        assert page.status_code == 200, page.text
        assert element_text(page.text, "message") == "Hello baeldung, from message-service"
        assert session.access_token not in (None, stale)
        assert session.refresh_token not in (None, spent)  # rotated
        assert session.id_claims.get("sub") == "baeldung"
    finally:
        await check.aclose()


async def test_concurrent_requests_spend_the_refresh_token_once(demo_system: DemoSystem) -> None:
    """The authorization server treats a second use of a rotated refresh token as theft and revokes the login: the
    session's requests take turns, so only one of them refreshes and the new refresh token stays good."""
    check = await logged_in_check(demo_system)
    url = demo_system.topology.client_url + "/api/user/message"
    try:
        session = _session(demo_system, check.http.cookies.get(COOKIE_NAME))
        session.access_token = await expired_token(demo_system, "user-service", ("openid", "user.read"))
        pages = await asyncio.gather(*(check.http.get(url) for _ in range(4)))
        assert [page.status_code for page in pages] == [200] * 4
        # Had the old refresh token been spent twice, the server would have revoked its successor too.
        session.access_token = await expired_token(demo_system, "user-service", ("openid", "user.read"))
        again = await check.http.get(url)
        assert again.status_code == 200, again.headers.get("location")
    finally:
        await check.aclose()
