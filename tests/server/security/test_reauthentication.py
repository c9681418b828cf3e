"""Forced re-authentication (OpenID Connect Core 3.1.2.1 ``max_age`` and ``prompt=login``) must ask for the
password once and then finish. Before the fix ``max_age=0`` (which the spec makes equivalent to
``prompt=login``) sent the user from the login page back to the login page forever: the return URL kept
``max_age``, which a session even a moment old fails again."""

from __future__ import annotations

import base64
import json
import time
from typing import Any

import httpx
import pytest
from tests.server.browser import Browser, query_of, web_authorize_params


def _claims(token: str) -> dict[str, Any]:
    payload = token.split(".")[1]
    decoded: dict[str, Any] = json.loads(base64.urlsafe_b64decode(payload + "=" * (-len(payload) % 4)))
    return decoded


@pytest.mark.parametrize("forcing", [{"max_age": "0"}, {"prompt": "login"}])
async def test_forced_reauthentication_asks_once_and_completes(
    browser: Browser, http: httpx.AsyncClient, forcing: dict[str, str]
) -> None:
    await browser.code_for()  # an existing session
    response = await browser.authorize(web_authorize_params(**forcing))
    assert response.headers["location"].startswith("/login")
    signed_in = await browser.login(response.headers["location"])
    assert signed_in.status_code == 303
    back = await http.get(signed_in.headers["location"])
    assert back.status_code == 302, back.headers.get("location")
    query = query_of(back.headers["location"])
    assert "code" in query
    assert query["state"] == "xyz-state"
    tokens = await browser.redeem(query["code"])
    assert _claims(tokens.json()["id_token"])["auth_time"] <= time.time()
