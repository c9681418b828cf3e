"""Introspection (RFC 7662), revocation (RFC 7009) and userinfo over HTTP."""

from __future__ import annotations

import httpx
from tests.server.browser import Browser, basic_auth
from tests.server.configs import (
    PLAIN_CLIENT,
    PLAIN_SECRET,
    SERVICE_CLIENT,
    SERVICE_SECRET,
    SPA_CLIENT,
    WEB_CLIENT,
)

SERVICE = {"client_id": SERVICE_CLIENT, "client_secret": SERVICE_SECRET}


async def introspect(http: httpx.AsyncClient, token: str) -> dict[str, object]:
    response = await http.post("/oauth2/introspect", data={"token": token, **SERVICE})
    return checked(response)


async def introspect_as_owner(http: httpx.AsyncClient, refresh_token: str) -> dict[str, object]:
    """A refresh token is described only to the client it was issued to (the web client here)."""
    return checked(await http.post("/oauth2/introspect", data={"token": refresh_token}, headers=basic_auth()))


def checked(response: httpx.Response) -> dict[str, object]:
    assert response.status_code == 200
    assert response.headers["cache-control"] == "no-store"
    body: dict[str, object] = response.json()
    return body


async def test_introspect_access_and_refresh_tokens(http: httpx.AsyncClient, browser: Browser, base_url: str) -> None:
    tokens = await browser.tokens()
    access = await introspect(http, tokens["access_token"])
    assert access["active"] is True
    assert access["sub"] == "alice"
    assert access["client_id"] == WEB_CLIENT
    assert access["scope"] == "openid profile"
    assert access["iss"] == base_url
    assert access["aud"] == "user-service"
    assert access["token_type"] == "Bearer"
    refresh = await introspect_as_owner(http, tokens["refresh_token"])
    assert refresh["active"] is True
    assert refresh["client_id"] == WEB_CLIENT
    assert refresh["token_type"] == "refresh_token"
    # An ID token is not an access token.
    assert await introspect(http, tokens["id_token"]) == {"active": False}


async def test_introspect_inactive_tokens(http: httpx.AsyncClient) -> None:
    for token in ("garbage", "a.b.c", "x" * 2000):
        assert await introspect(http, token) == {"active": False}


async def test_introspection_needs_a_confidential_client(http: httpx.AsyncClient) -> None:
    anonymous = await http.post("/oauth2/introspect", data={"token": "t"})
    assert anonymous.status_code == 401
    assert anonymous.json()["error"] == "invalid_client"
    public = await http.post("/oauth2/introspect", data={"token": "t", "client_id": SPA_CLIENT})
    assert public.status_code == 401
    missing = await http.post("/oauth2/introspect", data=SERVICE)
    assert missing.status_code == 400
    assert missing.json()["error"] == "invalid_request"


async def test_revoke_access_token(http: httpx.AsyncClient, browser: Browser) -> None:
    tokens = await browser.tokens()
    response = await http.post("/oauth2/revoke", data={"token": tokens["access_token"]}, headers=basic_auth())
    assert response.status_code == 200
    assert (await introspect(http, tokens["access_token"]))["active"] is False
    # The refresh token of the grant still works: only that access token was revoked.
    assert (await introspect_as_owner(http, tokens["refresh_token"]))["active"] is True


async def test_revoke_refresh_token_revokes_its_grant(http: httpx.AsyncClient, browser: Browser) -> None:
    tokens = await browser.tokens()
    response = await http.post(
        "/oauth2/revoke",
        data={"token": tokens["refresh_token"], "token_type_hint": "refresh_token"},
        headers=basic_auth(),
    )
    assert response.status_code == 200
    assert (await introspect_as_owner(http, tokens["refresh_token"]))["active"] is False
    assert (await introspect(http, tokens["access_token"]))["active"] is False


async def test_revoke_unknown_token_is_200_and_other_clients_tokens_are_refused(
    http: httpx.AsyncClient, browser: Browser
) -> None:
    assert (await http.post("/oauth2/revoke", data={"token": "unknown", **SERVICE})).status_code == 200
    tokens = await browser.tokens()
    other = {"client_id": PLAIN_CLIENT, "client_secret": PLAIN_SECRET}
    for token in (tokens["access_token"], tokens["refresh_token"]):
        response = await http.post("/oauth2/revoke", data={"token": token, **other})
        assert response.status_code == 400
        assert response.json()["error"] == "unauthorized_client"
    assert (await introspect(http, tokens["access_token"]))["active"] is True
    unauthenticated = await http.post("/oauth2/revoke", data={"token": tokens["access_token"]})
    assert unauthenticated.status_code == 401


async def test_userinfo(http: httpx.AsyncClient, browser: Browser) -> None:
    tokens = await browser.tokens()
    response = await http.get("/userinfo", headers={"Authorization": f"Bearer {tokens['access_token']}"})
    assert response.status_code == 200
    claims = response.json()
    assert claims["sub"] == "alice"
    assert claims["name"] == "Alice Liddell"  # profile scope
    assert "email" not in claims  # no email scope
    assert claims["department"] == "wonderland"  # custom claims are released
    posted = await http.post("/userinfo", headers={"Authorization": f"Bearer {tokens['access_token']}"})
    assert posted.status_code == 200


async def test_userinfo_errors(http: httpx.AsyncClient) -> None:
    missing = await http.get("/userinfo")
    assert missing.status_code == 401
    assert missing.headers["www-authenticate"].startswith("Bearer")
    bad = await http.get("/userinfo", headers={"Authorization": "Bearer not-a-token"})
    assert bad.status_code == 401
    assert 'error="invalid_token"' in bad.headers["www-authenticate"]
    service = await http.post("/oauth2/token", data={"grant_type": "client_credentials", **SERVICE})
    no_openid = await http.get("/userinfo", headers={"Authorization": f"Bearer {service.json()['access_token']}"})
    assert no_openid.status_code == 403
    assert no_openid.json()["error"] == "insufficient_scope"


async def test_revoked_token_fails_at_userinfo(http: httpx.AsyncClient, browser: Browser) -> None:
    tokens = await browser.tokens()
    await http.post("/oauth2/revoke", data={"token": tokens["access_token"]}, headers=basic_auth())
    response = await http.get("/userinfo", headers={"Authorization": f"Bearer {tokens['access_token']}"})
    assert response.status_code == 401
