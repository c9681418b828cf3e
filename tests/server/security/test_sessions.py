"""Browser sessions: a login always starts a new session and ends the one the browser had, and cookies are
``Secure`` whenever the issuer is HTTPS."""

from __future__ import annotations

from pathlib import Path

import httpx
from tests.server.browser import Browser, hidden_fields, web_authorize_params
from tests.server.configs import server_config

from tokensmith.server.app import create_app
from tokensmith.server.core.sessions import LOGIN_CSRF_COOKIE, SESSION_COOKIE


async def _signed_in_as(http: httpx.AsyncClient, session_id: str) -> bool:
    page = await http.get("/login/done", headers={"Cookie": f"{SESSION_COOKIE}={session_id}"})
    return "Signed in" in page.text


async def test_login_replaces_the_previous_session(browser: Browser, http: httpx.AsyncClient) -> None:
    await browser.code_for()
    first = http.cookies[SESSION_COOKIE]
    # prompt=login makes the signed-in user authenticate again.
    await browser.code_for(web_authorize_params(prompt="login"))
    second = http.cookies[SESSION_COOKIE]
    assert second != first
    http.cookies.clear()
    assert not await _signed_in_as(http, first)  # the old session id no longer signs anyone in
    assert await _signed_in_as(http, second)


async def test_a_planted_session_id_is_never_adopted(http: httpx.AsyncClient) -> None:
    planted = "attacker-chosen-session-id"
    page = await http.get("/login")
    signed_in = await http.post(
        "/login",
        data={**hidden_fields(page.text), "username": "bob", "password": "bob-password"},
        headers={"Cookie": f"{SESSION_COOKIE}={planted}; {LOGIN_CSRF_COOKIE}={http.cookies[LOGIN_CSRF_COOKIE]}"},
    )
    assert signed_in.status_code == 303
    issued = signed_in.cookies[SESSION_COOKIE]
    assert issued != planted
    http.cookies.clear()
    assert await _signed_in_as(http, issued)
    assert not await _signed_in_as(http, planted)


async def test_cookies_are_secure_when_the_issuer_is_https(tmp_path: Path) -> None:
    config = server_config(f"sqlite+aiosqlite:///{tmp_path / 't.db'}", issuer="https://auth.example")
    assert not config.login.secure_cookies  # the setting was left at its default
    app = create_app(config)
    transport = httpx.ASGITransport(app=app)
    async with (
        app.router.lifespan_context(app),
        httpx.AsyncClient(transport=transport, base_url="https://auth.example") as client,
    ):
        page = await client.get("/login")
        assert "secure" in page.headers["set-cookie"].lower()
        data = {**hidden_fields(page.text), "username": "bob", "password": "bob-password"}
        signed_in = await client.post("/login", data=data)
        assert signed_in.status_code == 303
        cookies = {c.split("=", 1)[0]: c.lower() for c in signed_in.headers.get_list("set-cookie")}
        assert "secure" in cookies[SESSION_COOKIE]
        assert "secure" in cookies[LOGIN_CSRF_COOKIE]  # deleted with the same attributes
        confirm = await client.get("/connect/logout")
        signed_out = await client.post("/connect/logout", data=hidden_fields(confirm.text))
        assert signed_out.status_code == 200
        assert "secure" in signed_out.headers["set-cookie"].lower()  # the session cookie's deletion
