"""No password, client secret, code, token or session id in the server's logs, even at DEBUG.

The whole flow runs in-process (the app under httpx's ASGI transport, its lifespan entered by hand) so that
pytest captures every log record the server, Starlette and the libraries it calls emit at DEBUG.
"""

from __future__ import annotations

import logging
from pathlib import Path

import httpx
import pytest
from tests.server.browser import Browser, basic_auth
from tests.server.configs import PASSWORD, SERVICE_CLIENT, SERVICE_SECRET, WEB_SECRET, server_config

from tokensmith.server.app import create_app
from tokensmith.server.core.sessions import SESSION_COOKIE
from tokensmith.server.key_encryption import KeyEncryptionKey
from tokensmith.server.keys import open_private_key
from tokensmith.store import open_store


async def test_debug_logs_hold_no_secret(tmp_path: Path, caplog: pytest.LogCaptureFixture) -> None:
    caplog.set_level(logging.DEBUG)
    database_url = f"sqlite+aiosqlite:///{tmp_path / 't.db'}"
    app = create_app(server_config(database_url, issuer="http://testserver"))
    transport = httpx.ASGITransport(app=app)
    async with (
        app.router.lifespan_context(app),
        httpx.AsyncClient(transport=transport, base_url="http://testserver") as http,
    ):
        browser = Browser(http)
        query = await browser.code_for()
        session_id = http.cookies[SESSION_COOKIE]
        tokens = await browser.tokens()
        refreshed = (
            await http.post(
                "/oauth2/token",
                data={"grant_type": "refresh_token", "refresh_token": tokens["refresh_token"]},
                headers=basic_auth(),
            )
        ).json()
        await http.post("/oauth2/introspect", data={"token": refreshed["access_token"]}, headers=basic_auth())
        await http.get("/userinfo", headers={"Authorization": "Bearer " + refreshed["access_token"]})
        await http.post("/oauth2/revoke", data={"token": refreshed["refresh_token"]}, headers=basic_auth())
        service = {"client_id": SERVICE_CLIENT, "client_secret": SERVICE_SECRET}
        await http.post("/oauth2/token", data={"grant_type": "client_credentials", **service})
        await http.post("/oauth2/token", data={"grant_type": "client_credentials", **service, "client_secret": "bad"})

    store = open_store(database_url)
    encryption_key_text = (tmp_path / "t.db.key").read_text().strip()
    encryption_key = KeyEncryptionKey.from_text(encryption_key_text, "the test")
    try:
        # The private signing keys were written (sealed, with their parameters) while DEBUG was on.
        records = await store.list_signing_keys()
        private_parts = [open_private_key(r, encryption_key).as_dict(private=True)["d"] for r in records]
    finally:
        await store.close()
    assert private_parts
    secrets = {
        **{f"private signing key {n}": part for n, part in enumerate(private_parts)},
        "key-encryption key": encryption_key_text,
        "password": PASSWORD,
        "web client secret": WEB_SECRET,
        "service client secret": SERVICE_SECRET,
        "code": query["code"],
        "session id": session_id,
        **{f"{name} (first)": str(tokens[name]) for name in ("access_token", "refresh_token", "id_token")},
        **{f"{name} (refreshed)": str(refreshed[name]) for name in ("access_token", "refresh_token", "id_token")},
    }
    records = caplog.records  # every logger, the database drivers' included
    assert records  # DEBUG capture works (the server and its libraries do log)
    text = "\n".join(f"{r.name} {r.getMessage()} {r.exc_text or ''}" for r in records)
    leaked = [name for name, value in secrets.items() if value in text]
    assert not leaked, leaked
