"""The authorization endpoint and login page over HTTP: redirects, error pages, prompt, consent, CSRF."""

from __future__ import annotations

import re

import httpx
import pytest
from tests.server.browser import Browser, hidden_fields, query_of, web_authorize_params
from tests.server.configs import (
    CONSENT_CLIENT,
    CONSENT_REDIRECT,
    PASSWORD,
    PLAIN_CLIENT,
    PLAIN_REDIRECT,
    SPA_CLIENT,
    SPA_REDIRECT,
    USERNAME,
    WEB_CLIENT,
    WEB_REDIRECT,
)


async def signed_in(browser: Browser) -> None:
    await browser.code_for()


async def test_code_flow_returns_code_state_and_iss(browser: Browser, base_url: str) -> None:
    response = await browser.authorize(web_authorize_params())
    assert response.status_code == 303
    assert response.headers["location"].startswith("/login?next=")
    login = await browser.login(response.headers["location"])
    assert login.status_code == 303
    cookie = login.headers["set-cookie"]
    assert "tokensmith_session=" in cookie
    assert "HttpOnly" in cookie
    assert "SameSite=lax" in cookie or "samesite=lax" in cookie.lower()
    assert "Secure" not in cookie  # login.secure-cookies is off by default (plain-HTTP test server)
    back = await browser.http.get(login.headers["location"])
    assert back.status_code == 302
    location = back.headers["location"]
    assert location.startswith(WEB_REDIRECT + "?")
    query = query_of(location)
    assert query["state"] == "xyz-state"
    assert query["iss"] == base_url
    assert len(query["code"]) >= 40
    # Signed in now: the next authorization needs no login.
    again = await browser.authorize(web_authorize_params(state="second"))
    assert again.status_code == 302
    assert query_of(again.headers["location"])["state"] == "second"


async def test_post_authorization_request(browser: Browser) -> None:
    await signed_in(browser)
    response = await browser.http.post("/oauth2/authorize", data=web_authorize_params())
    assert response.status_code == 303
    assert "code" in query_of(response.headers["location"])


@pytest.mark.parametrize(
    "params",
    [
        {"client_id": "unknown"},
        {"redirect_uri": "https://evil.example/cb"},
        {"redirect_uri": WEB_REDIRECT + "/"},  # exact match only
        {"redirect_uri": ""},
        {"client_id": ""},
    ],
)
async def test_bad_client_or_redirect_uri_shows_a_page_never_redirects(
    browser: Browser, params: dict[str, str]
) -> None:
    response = await browser.authorize(web_authorize_params(**params))
    assert response.status_code == 400
    assert "location" not in response.headers
    assert response.headers["content-type"].startswith("text/html")
    assert "not valid" in response.text


async def test_duplicate_redirect_uri_shows_a_page(http: httpx.AsyncClient) -> None:
    query = "client_id=" + WEB_CLIENT + "&redirect_uri=" + WEB_REDIRECT + "&redirect_uri=" + WEB_REDIRECT
    response = await http.get("/oauth2/authorize?" + query)
    assert response.status_code == 400


@pytest.mark.parametrize(
    ("params", "error"),
    [
        ({"response_type": ""}, "invalid_request"),
        ({"response_type": "token"}, "unsupported_response_type"),
        ({"code_challenge_method": "plain"}, "invalid_request"),
        ({"code_challenge_method": ""}, "invalid_request"),
        ({"code_challenge": "", "code_challenge_method": ""}, "invalid_request"),  # PKCE required for this client
        ({"code_challenge": "too-short"}, "invalid_request"),
        ({"scope": "openid admin"}, "invalid_scope"),
        ({"prompt": "none"}, "login_required"),
        ({"prompt": "bogus"}, "invalid_request"),
        ({"max_age": "-1"}, "invalid_request"),
        ({"response_mode": "fragment"}, "invalid_request"),
        ({"request": "eyJ..."}, "request_not_supported"),
        ({"resource": "https://other.example/api"}, "invalid_target"),  # RFC 8707: not one of the client's audiences
        ({"resource": "relative"}, "invalid_target"),
    ],
)
async def test_errors_after_a_valid_redirect_uri_are_redirected(
    browser: Browser, base_url: str, params: dict[str, str], error: str
) -> None:
    response = await browser.authorize(web_authorize_params(**params))
    assert response.status_code == 302
    location = response.headers["location"]
    assert location.startswith(WEB_REDIRECT + "?")
    query = query_of(location)
    assert query["error"] == error
    assert query["state"] == "xyz-state"
    assert query["iss"] == base_url
    assert "code" not in query


async def test_public_client_must_use_pkce(browser: Browser) -> None:
    params = {"response_type": "code", "client_id": SPA_CLIENT, "redirect_uri": SPA_REDIRECT, "state": "s"}
    response = await browser.authorize(params)
    assert query_of(response.headers["location"])["error"] == "invalid_request"


async def test_existing_query_of_a_registered_redirect_uri_is_kept(browser: Browser) -> None:
    await signed_in(browser)
    params = {"response_type": "code", "client_id": PLAIN_CLIENT, "redirect_uri": PLAIN_REDIRECT + "?tenant=a"}
    response = await browser.authorize(params)
    location = response.headers["location"]
    assert location.startswith(PLAIN_REDIRECT + "?tenant=a&code=")
    assert "state" not in query_of(location)  # no state sent, none returned


async def test_prompt_none_and_prompt_login_with_a_session(browser: Browser) -> None:
    await signed_in(browser)
    silent = await browser.authorize(web_authorize_params(prompt="none"))
    assert "code" in query_of(silent.headers["location"])
    forced = await browser.authorize(web_authorize_params(prompt="login"))
    assert forced.headers["location"].startswith("/login?next=")
    login = await browser.login(forced.headers["location"])
    back = await browser.http.get(login.headers["location"])
    assert "code" in query_of(back.headers["location"])  # no endless login loop


async def test_consent_page_approve_and_deny(browser: Browser, base_url: str) -> None:
    await signed_in(browser)
    params = {"response_type": "code", "client_id": CONSENT_CLIENT, "redirect_uri": CONSENT_REDIRECT, "state": "c"}
    page = await browser.authorize(params)
    assert page.status_code == 200
    assert "Allow access?" in page.text
    assert page.headers["x-frame-options"] == "DENY"
    fields = hidden_fields(page.text)
    assert fields["client_id"] == CONSENT_CLIENT
    approved = await browser.http.post("/oauth2/authorize", data={**fields, "consent_action": "approve"})
    assert approved.status_code == 303
    assert "code" in query_of(approved.headers["location"])
    assert query_of(approved.headers["location"])["iss"] == base_url  # RFC 9207, after a POST too
    denied = await browser.http.post("/oauth2/authorize", data={**fields, "consent_action": "deny"})
    assert query_of(denied.headers["location"])["error"] == "access_denied"
    assert query_of(denied.headers["location"])["iss"] == base_url
    forged = await browser.http.post(
        "/oauth2/authorize", data={**fields, "csrf_token": "forged", "consent_action": "approve"}
    )
    assert forged.status_code == 200  # shown the consent page again, no code
    silent = await browser.authorize({**params, "prompt": "none"})
    assert query_of(silent.headers["location"])["error"] == "consent_required"
    assert query_of(silent.headers["location"])["iss"] == base_url


def _listed(page: str, css_class: str) -> list[str]:
    """The items of the consent page's ``<ul class=css_class>``, in order ([] when it has none)."""
    found = re.search(rf'<ul class="{css_class}">(.*?)</ul>', page, re.DOTALL)
    return re.findall(r"<li><code>([^<]*)</code></li>", found.group(1)) if found else []


async def test_consent_page_names_the_services_the_tokens_are_for(browser: Browser) -> None:
    await signed_in(browser)
    params = {
        "response_type": "code",
        "client_id": CONSENT_CLIENT,
        "redirect_uri": CONSENT_REDIRECT,
        "scope": "profile",
    }
    every = await browser.authorize(params)
    assert _listed(every.text, "scopes") == ["profile"]
    assert _listed(every.text, "services") == [
        "https://calendar.example",
        "https://mail.example",
    ]  # no resource: the client's audiences
    one = await browser.authorize({**params, "resource": "https://mail.example"})
    assert _listed(one.text, "services") == ["https://mail.example"]
    assert hidden_fields(one.text)["resource"] == "https://mail.example"  # approving asks for the same resource
    web = await browser.authorize(web_authorize_params(prompt="consent"))
    assert _listed(web.text, "services") == ["user-service"]
    # A client without audiences gets tokens for itself only: no service to name.
    spa = await browser.authorize(
        web_authorize_params(client_id=SPA_CLIENT, redirect_uri=SPA_REDIRECT, prompt="consent")
    )
    assert spa.status_code == 200
    assert _listed(spa.text, "scopes") == ["openid", "profile"]
    assert _listed(spa.text, "services") == []


async def test_login_page_is_accessible_and_mobile_ready(http: httpx.AsyncClient) -> None:
    page = await http.get("/login")
    assert page.status_code == 200
    html = page.text
    assert '<html lang="en">' in html
    assert 'name="viewport"' in html
    assert '<label for="username">' in html
    assert '<label for="password">' in html
    assert 'autocomplete="current-password"' in html
    assert page.headers["cache-control"] == "no-store"
    assert "frame-ancestors 'none'" in page.headers["content-security-policy"]
    css = await http.get("/static/style.css")
    assert css.status_code == 200
    assert "max-width" in css.text


async def test_login_without_csrf_cookie_is_refused(base_url: str) -> None:
    async with httpx.AsyncClient(base_url=base_url) as fresh:
        response = await fresh.post(
            "/login", data={"username": USERNAME, "password": PASSWORD, "csrf_token": "guess", "next": ""}
        )
    assert response.status_code == 400
    assert "tokensmith_session" not in response.headers.get("set-cookie", "")


async def test_wrong_password_and_unknown_user(browser: Browser) -> None:
    wrong = await browser.login("/login", password="nope")
    assert wrong.status_code == 401
    assert "incorrect" in wrong.text
    assert 'value="alice"' in wrong.text  # the username is kept, the password is not
    unknown = await browser.login("/login", username="mallory", password="x")
    assert unknown.status_code == 401
    assert "incorrect" in unknown.text


async def test_open_redirect_through_next_is_refused(browser: Browser) -> None:
    response = await browser.login("/login?next=https://evil.example/")
    assert response.status_code == 303
    assert response.headers["location"] == "/login/done"
    done = await browser.http.get("/login/done")
    assert "signed in as alice" in done.text


async def test_failed_logins_are_throttled_per_user(browser: Browser) -> None:
    for _ in range(5):
        assert (await browser.login("/login", username="bob", password="wrong")).status_code == 401
    throttled = await browser.login("/login", username="bob", password="bob-password")
    assert throttled.status_code == 429
    assert "Too many failed attempts" in throttled.text
    other = await browser.login("/login")  # another user from the same address still signs in
    assert other.status_code == 303


async def test_echoed_username_is_escaped(browser: Browser) -> None:
    response = await browser.login("/login", username="<script>alert(1)</script>", password="x")
    assert response.status_code == 401
    assert "<script>alert(1)</script>" not in response.text
    assert "&lt;script&gt;" in response.text


async def test_oversized_login_form_is_refused(http: httpx.AsyncClient) -> None:
    response = await http.post("/login", data={"username": "a", "password": "x" * 70_000})
    assert response.status_code == 413
    assert "tokensmith_session" not in response.headers.get("set-cookie", "")
