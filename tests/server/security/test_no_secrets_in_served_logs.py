"""No issued token, code, client secret, password or ``id_token_hint`` in what ``tokensmith serve`` writes, at
DEBUG, through every flow: authorization code with PKCE, refresh, client credentials, token exchange,
introspection, revocation, logout with ``id_token_hint``, and a failed sign-in. A real server process with
``--log-format json``: uvicorn's error and access loggers, tokensmith's loggers and any library's warnings all
go through the same handler, so every line must also be one JSON object."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import httpx
from tests.server.browser import Browser, basic_auth, web_authorize_params
from tests.server.configs import (
    PASSWORD,
    SERVICE_CLIENT,
    SERVICE_SECRET,
    USERNAME,
    WEB_LOGOUT_REDIRECT,
    WEB_SECRET,
    config_data,
)
from tests.server.exchange.http_support import ARTICLE_CLIENT
from tests.support.serve_process import serve_process

from tokensmith.config.exchange import ACCESS_TOKEN_TYPE
from tokensmith.config.server import TOKEN_EXCHANGE
from tokensmith.server.core.sessions import SESSION_COOKIE

EXCHANGE_SECRET = "exchange-secret-6f1d"
WRONG_PASSWORD = "not-the-password-93b2"


def logged_config(database_url: str) -> dict[str, Any]:
    data = config_data(login={"max-backoff": "0s"})
    client = json.loads(json.dumps(ARTICLE_CLIENT))
    client["registration"]["client-secret"] = "{noop}" + EXCHANGE_SECRET
    data["clients"]["message-service"] = client
    data["database-url"] = database_url
    return data


async def run_every_flow(base_url: str) -> dict[str, str]:
    """Every flow once; the secrets and tokens that went over the wire, by name."""
    seen: dict[str, str] = {"password": PASSWORD, "wrong password": WRONG_PASSWORD}
    seen.update({"web secret": WEB_SECRET, "service secret": SERVICE_SECRET, "exchange secret": EXCHANGE_SECRET})
    async with httpx.AsyncClient(base_url=base_url, follow_redirects=False, timeout=10) as http:
        browser = Browser(http)
        failed = await browser.authorize(web_authorize_params())
        refused = await browser.login(failed.headers["location"], password=WRONG_PASSWORD)
        assert refused.status_code in (200, 400, 401, 429), refused.text
        query = await browser.code_for()
        seen["code"] = query["code"]
        seen["session id"] = http.cookies[SESSION_COOKIE]
        tokens = await browser.tokens()
        for name in ("access_token", "refresh_token", "id_token"):
            seen[name] = tokens[name]
        refreshed = await http.post(
            "/oauth2/token",
            data={"grant_type": "refresh_token", "refresh_token": tokens["refresh_token"]},
            headers=basic_auth(),
        )
        assert refreshed.status_code == 200, refreshed.text
        for name in ("access_token", "refresh_token", "id_token"):
            seen["refreshed " + name] = refreshed.json()[name]
        service = await http.post(
            "/oauth2/token",
            data={"grant_type": "client_credentials", "client_id": SERVICE_CLIENT, "client_secret": SERVICE_SECRET},
        )
        assert service.status_code == 200, service.text
        seen["client credentials token"] = service.json()["access_token"]
        exchanged = await http.post(
            "/oauth2/token",
            data={
                "grant_type": TOKEN_EXCHANGE,
                "subject_token": refreshed.json()["access_token"],
                "subject_token_type": ACCESS_TOKEN_TYPE,
                "scope": "message.read",
            },
            headers=basic_auth("message-service", EXCHANGE_SECRET),
        )
        assert exchanged.status_code == 200, exchanged.text
        seen["exchanged token"] = exchanged.json()["access_token"]
        introspected = await http.post(
            "/oauth2/introspect", data={"token": seen["exchanged token"]}, headers=basic_auth()
        )
        assert introspected.json()["active"] is True
        revoked = await http.post(
            "/oauth2/revoke", data={"token": seen["refreshed refresh_token"]}, headers=basic_auth()
        )
        assert revoked.status_code == 200
        logout = await http.get(
            "/connect/logout",
            params={
                "id_token_hint": seen["refreshed id_token"],
                "post_logout_redirect_uri": WEB_LOGOUT_REDIRECT,
                "state": "s",
            },
        )
        assert logout.status_code in (200, 302, 303), logout.text
        bad = await http.post(
            "/oauth2/token", data={"grant_type": "authorization_code", "code": seen["code"]}, headers=basic_auth()
        )
        assert bad.status_code == 400  # a replayed code: an error path that logs too
    assert USERNAME  # the user name may be logged; the secrets above may not
    return seen


def json_lines(text: str) -> list[dict[str, Any]]:
    lines = [json.loads(line) for line in text.splitlines() if line.strip()]
    assert all({"time", "level", "logger", "message"} <= line.keys() for line in lines)
    return lines


async def test_no_secret_or_token_in_any_line_at_debug(tmp_path: Path) -> None:
    data = logged_config(f"sqlite+aiosqlite:///{tmp_path / 'ts.db'}")
    with serve_process(data, tmp_path, extra_args=["--log-level", "debug", "--log-format", "json"]) as server:
        seen = await run_every_flow(server.url)
    text = server.log_text()
    lines = json_lines(text)
    loggers = {line["logger"] for line in lines}
    assert {"uvicorn.access", "uvicorn.error"} <= loggers, loggers
    access = [line for line in lines if line["logger"] == "uvicorn.access"]
    assert any(line["path"] == "/connect/logout" and line["status"] in (200, 302, 303) for line in access)
    assert any(line["logger"].startswith("tokensmith") for line in lines), loggers  # tokensmith's loggers reach it
    leaked = [name for name, value in seen.items() if value in text]
    assert not leaked, leaked
    # Tokens are also looked for by their signature and payload alone.
    parts = [part for name, value in seen.items() if value.count(".") == 2 for part in value.split(".")[1:]]
    assert not [part for part in parts if part in text]
