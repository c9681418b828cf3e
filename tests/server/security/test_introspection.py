"""Introspection (RFC 7662) tells a client about a refresh token only when the token is that client's.

A refresh token is a credential of the client it was issued to; no resource server ever receives one. Before
the fix any confidential client could introspect another client's refresh token and learn who it belongs to,
its scope and its lifetime (RFC 7662 4: the server must not reveal more than the caller needs).
"""

from __future__ import annotations

import httpx
from tests.server.browser import Browser, basic_auth
from tests.server.configs import PLAIN_CLIENT, PLAIN_SECRET, SERVICE_CLIENT, SERVICE_SECRET


async def test_another_client_learns_nothing_about_a_refresh_token(browser: Browser, http: httpx.AsyncClient) -> None:
    tokens = await browser.tokens()
    refresh_token = tokens["refresh_token"]
    owner = await http.post("/oauth2/introspect", data={"token": refresh_token}, headers=basic_auth())
    assert owner.json()["active"] is True
    for client_id, secret in ((PLAIN_CLIENT, PLAIN_SECRET), (SERVICE_CLIENT, SERVICE_SECRET)):
        other = await http.post(
            "/oauth2/introspect",
            data={"token": refresh_token, "client_id": client_id, "client_secret": secret},
        )
        assert other.status_code == 200
        assert other.json() == {"active": False}
        assert other.headers["cache-control"] == "no-store"


async def test_introspection_of_an_access_token_needs_client_authentication(
    browser: Browser, http: httpx.AsyncClient
) -> None:
    tokens = await browser.tokens()
    anonymous = await http.post("/oauth2/introspect", data={"token": tokens["access_token"]})
    assert anonymous.status_code == 401
    assert "error_description" in anonymous.json()
    public = await http.post("/oauth2/introspect", data={"token": tokens["access_token"], "client_id": "spa"})
    assert public.status_code == 401
    wrong = await http.post(
        "/oauth2/introspect", data={"token": tokens["access_token"]}, headers=basic_auth(secret="wrong")
    )
    assert wrong.status_code == 401
    assert wrong.headers["www-authenticate"].startswith("Basic")
