"""RP-Initiated Logout at /connect/logout."""

from __future__ import annotations

import httpx
from tests.server.browser import Browser, hidden_fields, query_of, web_authorize_params
from tests.server.configs import PLAIN_CLIENT, WEB_CLIENT, WEB_LOGOUT_REDIRECT


async def test_logout_with_id_token_hint_redirects_with_state(browser: Browser) -> None:
    tokens = await browser.tokens()
    response = await browser.http.get(
        "/connect/logout",
        params={
            "id_token_hint": tokens["id_token"],
            "post_logout_redirect_uri": WEB_LOGOUT_REDIRECT,
            "state": "bye",
        },
    )
    assert response.status_code == 303
    assert response.headers["location"] == WEB_LOGOUT_REDIRECT + "?state=bye"
    assert 'tokensmith_session=""' in response.headers["set-cookie"]
    # The session is gone on the server too: authorizing asks for a login again.
    browser.http.cookies.clear()
    again = await browser.authorize(web_authorize_params(prompt="none"))
    assert query_of(again.headers["location"])["error"] == "login_required"


async def test_session_ends_server_side(browser: Browser, base_url: str) -> None:
    tokens = await browser.tokens()
    session_cookie = browser.http.cookies["tokensmith_session"]
    await browser.http.get("/connect/logout", params={"id_token_hint": tokens["id_token"]})
    async with httpx.AsyncClient(base_url=base_url, cookies={"tokensmith_session": session_cookie}) as replay:
        response = await replay.get("/oauth2/authorize", params=web_authorize_params(prompt="none"))
    assert query_of(response.headers["location"])["error"] == "login_required"


async def test_logout_without_hint_asks_for_confirmation(browser: Browser) -> None:
    await browser.tokens()
    page = await browser.http.get("/connect/logout", params={"client_id": WEB_CLIENT, "state": "s"})
    assert page.status_code == 200
    assert "Sign out?" in page.text
    fields = hidden_fields(page.text)
    forged = await browser.http.post("/connect/logout", data={**fields, "csrf_token": "forged"})
    assert forged.status_code == 200  # asked again, still signed in
    confirmed = await browser.http.post("/connect/logout", data=fields)
    assert confirmed.status_code == 200
    assert "signed out" in confirmed.text


async def test_unregistered_post_logout_redirect_uri_is_an_error_page(http: httpx.AsyncClient) -> None:
    for params in (
        {"client_id": WEB_CLIENT, "post_logout_redirect_uri": "https://evil.example/"},
        {"post_logout_redirect_uri": WEB_LOGOUT_REDIRECT},  # no client named
        {"client_id": PLAIN_CLIENT, "post_logout_redirect_uri": WEB_LOGOUT_REDIRECT},
        {"id_token_hint": "not-a-jwt"},
    ):
        response = await http.get("/connect/logout", params=params)
        assert response.status_code == 400
        assert "location" not in response.headers


async def test_access_token_is_not_an_id_token_hint(http: httpx.AsyncClient, browser: Browser) -> None:
    tokens = await browser.tokens()
    response = await http.get("/connect/logout", params={"id_token_hint": tokens["access_token"]})
    assert response.status_code == 400


async def test_logout_without_session_just_confirms(http: httpx.AsyncClient) -> None:
    response = await http.get("/connect/logout")
    assert response.status_code == 200
    assert "signed out" in response.text
