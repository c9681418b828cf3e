"""Regression tests for checks the review found in place: exact redirect URI matching without open redirects,
anti-framing headers on every HTML page, and ``Cache-Control: no-store`` on every token-bearing answer."""

from __future__ import annotations

import httpx
import pytest
from tests.server.browser import Browser, basic_auth, hidden_fields, web_authorize_params
from tests.server.configs import (
    CONSENT_CLIENT,
    CONSENT_REDIRECT,
    WEB_CLIENT,
    WEB_LOGOUT_REDIRECT,
    WEB_REDIRECT,
)

EVIL = "https://evil.example/cb"

REDIRECT_TRICKS = [
    WEB_REDIRECT + "/",  # trailing slash
    WEB_REDIRECT[:-1],  # prefix
    WEB_REDIRECT + "x",  # extension
    WEB_REDIRECT.upper(),  # case
    WEB_REDIRECT.replace("http://", "HTTP://"),  # scheme case
    WEB_REDIRECT.replace(":8080", ":8081"),  # port
    WEB_REDIRECT.replace(":8080", ""),  # default port
    WEB_REDIRECT.replace("127.0.0.1", "127.0.0.1.evil.example"),  # host suffix
    WEB_REDIRECT.replace("http://", "http://evil.example@"),  # userinfo
    WEB_REDIRECT.replace("http://127.0.0.1:8080", "http://127.0.0.1:8080@evil.example"),  # userinfo the other way
    WEB_REDIRECT + "?next=" + EVIL,  # extra query
    WEB_REDIRECT + "#frag",  # fragment
    WEB_REDIRECT + "/../../evil",  # path traversal
    WEB_REDIRECT.replace("/login/", "/%6cogin/"),  # percent-encoded path
    WEB_REDIRECT + "%00",  # null byte
    WEB_REDIRECT + " ",  # trailing space
    WEB_REDIRECT.replace("http://", "https://"),  # scheme
    EVIL,
    "//evil.example/cb",
    "javascript:alert(1)",
]


@pytest.mark.parametrize("redirect_uri", REDIRECT_TRICKS)
async def test_only_the_exact_registered_redirect_uri_is_accepted(browser: Browser, redirect_uri: str) -> None:
    response = await browser.authorize(web_authorize_params(redirect_uri=redirect_uri))
    assert response.status_code == 400
    assert "location" not in response.headers
    assert "redirect_uri" in response.text


@pytest.mark.parametrize(
    "params",
    [
        {"client_id": "unknown", "redirect_uri": EVIL, "response_type": "code"},
        {"client_id": WEB_CLIENT, "redirect_uri": EVIL, "response_type": "nonsense"},
        {"client_id": WEB_CLIENT, "redirect_uri": [WEB_REDIRECT, EVIL], "response_type": "code"},
        {"client_id": [WEB_CLIENT, CONSENT_CLIENT], "redirect_uri": CONSENT_REDIRECT, "response_type": "code"},
        {"redirect_uri": EVIL, "response_type": "code"},
    ],
)
async def test_authorization_errors_never_redirect_to_an_unverified_uri(
    http: httpx.AsyncClient, params: dict[str, str | list[str]]
) -> None:
    response = await http.get("/oauth2/authorize", params=params)
    assert response.status_code == 400
    assert "location" not in response.headers


@pytest.mark.parametrize(
    "params",
    [
        {"post_logout_redirect_uri": EVIL},
        {"post_logout_redirect_uri": EVIL, "client_id": WEB_CLIENT},
        {"post_logout_redirect_uri": WEB_LOGOUT_REDIRECT + "/", "client_id": WEB_CLIENT},
        {"post_logout_redirect_uri": WEB_LOGOUT_REDIRECT, "client_id": "unknown"},
        {"post_logout_redirect_uri": WEB_LOGOUT_REDIRECT, "id_token_hint": "a.b.c"},
        {"post_logout_redirect_uri": [WEB_LOGOUT_REDIRECT, EVIL], "client_id": WEB_CLIENT},
    ],
)
async def test_logout_errors_never_redirect(http: httpx.AsyncClient, params: dict[str, str | list[str]]) -> None:
    for method in ("GET", "POST"):
        if method == "GET":
            response = await http.get("/connect/logout", params=params)
        else:
            response = await http.post("/connect/logout", data=params)
        assert response.status_code == 400, (method, params)
        assert "location" not in response.headers


def _assert_not_frameable(response: httpx.Response) -> None:
    assert response.headers["content-type"].startswith("text/html")
    assert response.headers["x-frame-options"] == "DENY"
    assert "frame-ancestors 'none'" in response.headers["content-security-policy"]
    assert response.headers["cache-control"] == "no-store"
    assert response.headers["x-content-type-options"] == "nosniff"


async def test_every_html_page_refuses_framing(browser: Browser, http: httpx.AsyncClient) -> None:
    pages = [
        await http.get("/login"),
        await http.get("/login/done"),
        await http.get("/oauth2/authorize", params={"client_id": "unknown"}),  # error page
        await http.get("/connect/logout", params={"post_logout_redirect_uri": EVIL}),  # error page
        await http.post("/login", data={"username": "x"}),  # CSRF failure re-shows the form
    ]
    failed = await http.post("/login", data={**hidden_fields(pages[0].text), "username": "x", "password": "y"})
    pages.append(failed)
    await browser.code_for()
    pages.append(await http.get("/login/done"))  # signed in
    pages.append(await http.get("/connect/logout"))  # confirmation form
    consent = {"client_id": CONSENT_CLIENT, "redirect_uri": CONSENT_REDIRECT, "response_type": "code"}
    pages.append(await http.get("/oauth2/authorize", params=consent))  # consent form
    for page in pages:
        _assert_not_frameable(page)


async def test_token_bearing_answers_are_never_cached(browser: Browser, http: httpx.AsyncClient) -> None:
    tokens = await browser.tokens()
    bearer = {"Authorization": "Bearer " + tokens["access_token"]}
    answers = [
        await http.post("/oauth2/token", data={"grant_type": "nonsense"}, headers=basic_auth()),
        await http.post("/oauth2/token", data={"grant_type": "refresh_token", "refresh_token": "x"}),
        await http.post(
            "/oauth2/token",
            data={"grant_type": "refresh_token", "refresh_token": tokens["refresh_token"]},
            headers=basic_auth(),
        ),
        await http.post("/oauth2/introspect", data={"token": tokens["access_token"]}, headers=basic_auth()),
        await http.post("/oauth2/introspect", data={"token": "x"}),
        await http.post("/oauth2/revoke", data={"token": "x"}, headers=basic_auth()),
        await http.post("/oauth2/revoke", data={"token": "x"}),
        await http.get("/userinfo", headers=bearer),
        await http.post("/userinfo", headers=bearer),
        await http.get("/userinfo"),
        await http.get("/userinfo", headers={"Authorization": "Bearer x"}),
    ]
    for answer in answers:
        assert answer.headers["cache-control"] == "no-store", answer.request.url
        assert answer.headers["pragma"] == "no-cache"
        if answer.status_code >= 400:
            assert {"error", "error_description"} <= answer.json().keys(), answer.text
