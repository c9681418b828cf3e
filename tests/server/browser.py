"""A scripted browser for the login and authorization pages (httpx with a cookie jar, redirects by hand)."""

from __future__ import annotations

import base64
import re
from dataclasses import dataclass
from html import unescape
from typing import Any
from urllib.parse import parse_qs, quote_plus, urlsplit

import httpx
from tests.server.configs import PASSWORD, USERNAME, WEB_CLIENT, WEB_REDIRECT, WEB_SECRET
from tests.server.protocol import VERIFIER

from tokensmith.server.core.pkce import s256_challenge

_HIDDEN = re.compile(r'<input type="hidden" name="([^"]+)" value="([^"]*)">')


def hidden_fields(html: str) -> dict[str, str]:
    return {name: unescape(value) for name, value in _HIDDEN.findall(html)}


def query_of(location: str) -> dict[str, str]:
    return {k: v[0] for k, v in parse_qs(urlsplit(location).query).items()}


def basic_auth(client_id: str = WEB_CLIENT, secret: str = WEB_SECRET) -> dict[str, str]:
    raw = f"{quote_plus(client_id)}:{quote_plus(secret)}".encode()
    return {"Authorization": "Basic " + base64.b64encode(raw).decode()}


def web_authorize_params(**overrides: str) -> dict[str, str]:
    params = {
        "response_type": "code",
        "client_id": WEB_CLIENT,
        "redirect_uri": WEB_REDIRECT,
        "scope": "openid profile",
        "state": "xyz-state",
        "nonce": "nonce-123",
        "code_challenge": s256_challenge(VERIFIER),
        "code_challenge_method": "S256",
    }
    params.update(overrides)
    return {k: v for k, v in params.items() if v != ""}


@dataclass
class Browser:
    http: httpx.AsyncClient

    async def authorize(self, params: dict[str, str]) -> httpx.Response:
        return await self.http.get("/oauth2/authorize", params=params)

    async def login(self, location: str, username: str = USERNAME, password: str = PASSWORD) -> httpx.Response:
        """Open the login page at ``location`` and submit the form."""
        page = await self.http.get(location)
        assert page.status_code == 200, page.text
        fields = hidden_fields(page.text)
        return await self.http.post("/login", data={**fields, "username": username, "password": password})

    async def code_for(self, params: dict[str, str] | None = None, **login: Any) -> dict[str, str]:
        """Authorize (signing in when asked) and return the query of the redirect back to the client."""
        response = await self.authorize(params or web_authorize_params())
        if response.headers["location"].startswith("/login"):
            signed_in = await self.login(response.headers["location"], **login)
            assert signed_in.status_code == 303, signed_in.text
            response = await self.http.get(signed_in.headers["location"])
        assert response.status_code == 302, response.text
        return query_of(response.headers["location"])

    async def redeem(self, code: str, headers: dict[str, str] | None = None) -> httpx.Response:
        """The web client redeems ``code`` at the token endpoint (PKCE, client_secret_basic); ``headers`` adds to
        its request, e.g. a DPoP proof."""
        return await self.http.post(
            "/oauth2/token",
            data={
                "grant_type": "authorization_code",
                "code": code,
                "redirect_uri": WEB_REDIRECT,
                "code_verifier": VERIFIER,
            },
            headers={**basic_auth(), **(headers or {})},
        )

    async def tokens(
        self, params: dict[str, str] | None = None, headers: dict[str, str] | None = None, **login: Any
    ) -> dict[str, Any]:
        """The whole authorization code flow for the web client (signing in with ``login`` when asked); the token
        response."""
        query = await self.code_for(params, **login)
        response = await self.redeem(query["code"], headers)
        assert response.status_code == 200, response.text
        body: dict[str, Any] = response.json()
        return body
