"""The token endpoint's answers to bad input: RFC 6749 5.2 error JSON, right status, never cached, never a 500."""

from __future__ import annotations

import httpx
import pytest
from tests.server.browser import Browser, basic_auth
from tests.server.configs import (
    PLAIN_CLIENT,
    PLAIN_SECRET,
    SERVICE_CLIENT,
    SERVICE_SECRET,
    SPA_CLIENT,
    WEB_CLIENT,
    WEB_REDIRECT,
)
from tests.server.protocol import VERIFIER

SERVICE = {"client_id": SERVICE_CLIENT, "client_secret": SERVICE_SECRET}


def assert_error(response: httpx.Response, error: str, status: int = 400) -> None:
    assert response.status_code == status, response.text
    body = response.json()
    assert body["error"] == error
    assert isinstance(body.get("error_description"), str)
    assert response.headers["cache-control"] == "no-store"
    assert response.headers["pragma"] == "no-cache"


async def test_client_credentials_over_http(http: httpx.AsyncClient) -> None:
    response = await http.post("/oauth2/token", data={"grant_type": "client_credentials", **SERVICE})
    assert response.status_code == 200
    assert response.headers["cache-control"] == "no-store"
    assert response.headers["pragma"] == "no-cache"
    body = response.json()
    assert body["token_type"] == "Bearer"
    assert body["expires_in"] == 300
    assert body["scope"] == "reports.read reports.write"


async def test_unknown_client_and_wrong_secret_are_401(http: httpx.AsyncClient) -> None:
    for auth in (basic_auth("nobody", "x"), basic_auth(WEB_CLIENT, "wrong")):
        response = await http.post("/oauth2/token", data={"grant_type": "client_credentials"}, headers=auth)
        assert_error(response, "invalid_client", 401)
        assert response.headers["www-authenticate"].startswith("Basic ")
    response = await http.post(
        "/oauth2/token", data={"grant_type": "client_credentials", "client_id": SERVICE_CLIENT, "client_secret": "no"}
    )
    assert_error(response, "invalid_client", 401)


@pytest.mark.parametrize(
    ("content", "headers", "error", "status"),
    [
        ('{"grant_type": "client_credentials"}', {"Content-Type": "application/json"}, "invalid_request", 400),
        ("grant_type=client_credentials", {"Content-Type": "text/plain"}, "invalid_request", 400),
        ("grant_type=client_credentials", {}, "invalid_request", 400),
        (b"grant_type=\xff\xfe", {"Content-Type": "application/x-www-form-urlencoded"}, "invalid_request", 400),
        ("a=" + "x" * 70_000, {"Content-Type": "application/x-www-form-urlencoded"}, "invalid_request", 413),
    ],
)
async def test_body_must_be_a_small_utf8_form(
    http: httpx.AsyncClient, content: str | bytes, headers: dict[str, str], error: str, status: int
) -> None:
    response = await http.post("/oauth2/token", content=content, headers={**headers, **basic_auth()})
    assert_error(response, error, status)


async def test_oversized_chunked_body_is_refused(http: httpx.AsyncClient) -> None:
    async def chunks():  # type: ignore[no-untyped-def]
        for _ in range(100):
            yield b"a=" + b"x" * 1000 + b"&"

    response = await http.post(
        "/oauth2/token", content=chunks(), headers={"Content-Type": "application/x-www-form-urlencoded"}
    )
    assert_error(response, "invalid_request", 413)


async def test_duplicate_parameters_are_invalid_request(http: httpx.AsyncClient) -> None:
    response = await http.post(
        "/oauth2/token",
        content="grant_type=client_credentials&grant_type=client_credentials",
        headers={"Content-Type": "application/x-www-form-urlencoded", **basic_auth()},
    )
    assert_error(response, "invalid_request")
    response = await http.post(
        "/oauth2/token",
        content=f"grant_type=client_credentials&client_id={SERVICE_CLIENT}&client_secret={SERVICE_SECRET}&scope=a&scope=b",
        headers={"Content-Type": "application/x-www-form-urlencoded"},
    )
    assert_error(response, "invalid_request")


async def test_parameters_in_the_query_string_are_refused(http: httpx.AsyncClient) -> None:
    response = await http.post("/oauth2/token?grant_type=client_credentials", data=SERVICE)
    assert_error(response, "invalid_request")


async def test_missing_unknown_and_unregistered_grant_types(http: httpx.AsyncClient) -> None:
    assert_error(await http.post("/oauth2/token", data=SERVICE), "invalid_request")
    assert_error(await http.post("/oauth2/token", data={"grant_type": "password", **SERVICE}), "unsupported_grant_type")
    response = await http.post("/oauth2/token", data={"grant_type": "authorization_code", **SERVICE})
    assert_error(response, "unauthorized_client")
    response = await http.post(
        "/oauth2/token",
        data={"grant_type": "client_credentials", "client_id": PLAIN_CLIENT, "client_secret": PLAIN_SECRET},
    )
    assert_error(response, "unauthorized_client")


async def test_basic_and_post_together_are_invalid_request(http: httpx.AsyncClient) -> None:
    response = await http.post(
        "/oauth2/token",
        data={"grant_type": "client_credentials", "client_secret": SERVICE_SECRET},
        headers=basic_auth(SERVICE_CLIENT, SERVICE_SECRET),
    )
    assert_error(response, "invalid_request")


async def test_scope_outside_registration_is_invalid_scope(http: httpx.AsyncClient) -> None:
    response = await http.post("/oauth2/token", data={"grant_type": "client_credentials", "scope": "admin", **SERVICE})
    assert_error(response, "invalid_scope")


async def test_code_errors(http: httpx.AsyncClient, browser: Browser) -> None:
    def redeem(code: str, **extra: str) -> dict[str, str]:
        return {
            "grant_type": "authorization_code",
            "code": code,
            "redirect_uri": WEB_REDIRECT,
            "code_verifier": VERIFIER,
            **extra,
        }

    assert_error(await http.post("/oauth2/token", data=redeem("bogus"), headers=basic_auth()), "invalid_grant")
    code = (await browser.code_for())["code"]
    wrong_uri = redeem(code, redirect_uri=WEB_REDIRECT + "x")
    assert_error(await http.post("/oauth2/token", data=wrong_uri, headers=basic_auth()), "invalid_grant")
    code = (await browser.code_for())["code"]
    bad_verifier = redeem(code, code_verifier="a" * 43)
    assert_error(await http.post("/oauth2/token", data=bad_verifier, headers=basic_auth()), "invalid_grant")
    # A public client cannot redeem a confidential client's code.
    code = (await browser.code_for())["code"]
    public = redeem(code, client_id=SPA_CLIENT)
    assert_error(await http.post("/oauth2/token", data=public), "invalid_grant")


async def test_replayed_code_revokes_tokens(http: httpx.AsyncClient, browser: Browser) -> None:
    code = (await browser.code_for())["code"]
    form = {"grant_type": "authorization_code", "code": code, "redirect_uri": WEB_REDIRECT, "code_verifier": VERIFIER}
    first = await http.post("/oauth2/token", data=form, headers=basic_auth())
    assert first.status_code == 200
    tokens = first.json()
    replay = await http.post("/oauth2/token", data=form, headers=basic_auth())
    assert_error(replay, "invalid_grant")
    introspected = await http.post("/oauth2/introspect", data={"token": tokens["access_token"]}, headers=basic_auth())
    assert introspected.json() == {"active": False}
    refreshed = await http.post(
        "/oauth2/token",
        data={"grant_type": "refresh_token", "refresh_token": tokens["refresh_token"]},
        headers=basic_auth(),
    )
    assert_error(refreshed, "invalid_grant")


async def test_refresh_rotation_and_reuse_over_http(http: httpx.AsyncClient, browser: Browser) -> None:
    tokens = await browser.tokens()
    form = {"grant_type": "refresh_token", "refresh_token": tokens["refresh_token"]}
    rotated = await http.post("/oauth2/token", data=form, headers=basic_auth())
    assert rotated.status_code == 200
    new = rotated.json()
    assert new["refresh_token"] != tokens["refresh_token"]
    assert new["expires_in"] == 300
    reused = await http.post("/oauth2/token", data=form, headers=basic_auth())
    assert_error(reused, "invalid_grant")
    after = await http.post(
        "/oauth2/token",
        data={"grant_type": "refresh_token", "refresh_token": new["refresh_token"]},
        headers=basic_auth(),
    )
    assert_error(after, "invalid_grant")
