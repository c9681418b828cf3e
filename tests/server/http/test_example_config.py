"""``examples/authorization-server.yaml`` runs the article's flow: login, code + PKCE, then the token exchange."""

from __future__ import annotations

import base64
import json
from pathlib import Path
from typing import Any

import httpx
from tests.server.browser import Browser, basic_auth
from tests.server.protocol import VERIFIER
from tests.support.server import running_server

from tokensmith.config.exchange import ACCESS_TOKEN_TYPE
from tokensmith.config.loader import load_config
from tokensmith.config.server import TOKEN_EXCHANGE
from tokensmith.server.core.pkce import s256_challenge

EXAMPLE = Path(__file__).resolve().parents[3] / "examples" / "authorization-server.yaml"
REDIRECT = "http://127.0.0.1:8080/login/oauth2/code/messaging-client-oidc"


def claims_of(token: str) -> dict[str, Any]:
    payload = token.split(".")[1]
    decoded: dict[str, Any] = json.loads(base64.urlsafe_b64decode(payload + "=" * (-len(payload) % 4)))
    return decoded


async def test_article_flow_with_the_example_config() -> None:
    config = load_config(EXAMPLE, environ={})
    async with running_server(config) as url, httpx.AsyncClient(base_url=url, timeout=10) as http:
        browser = Browser(http)
        params = {
            "response_type": "code",
            "client_id": "messaging-client-oidc",
            "redirect_uri": REDIRECT,
            "scope": "openid profile",
            "state": "s",
            "code_challenge": s256_challenge(VERIFIER),
            "code_challenge_method": "S256",
        }
        query = await browser.code_for(params, username="baeldung", password="password")
        assert query["state"] == "s"
        assert query["iss"] == url
        form = {"grant_type": "authorization_code", "code": query["code"], "redirect_uri": REDIRECT}
        tokens = (
            await http.post(
                "/oauth2/token",
                data={**form, "code_verifier": VERIFIER},
                headers=basic_auth("messaging-client-oidc", "secret"),
            )
        ).json()
        user_token = claims_of(tokens["access_token"])
        assert user_token["sub"] == "baeldung"
        assert user_token["aud"] == "user-service"
        assert "refresh_token" in tokens
        assert "id_token" in tokens

        # user-service exchanges the user's token as the client message-service (section 5.2).
        exchanged = await http.post(
            "/oauth2/token",
            data={
                "grant_type": TOKEN_EXCHANGE,
                "subject_token": tokens["access_token"],
                "subject_token_type": ACCESS_TOKEN_TYPE,
            },
            headers=basic_auth("message-service", "token"),
        )
        assert exchanged.status_code == 200, exchanged.text
        body = exchanged.json()
        assert body["issued_token_type"] == ACCESS_TOKEN_TYPE
        assert body["expires_in"] > 0
        message_token = claims_of(body["access_token"])
        assert message_token["sub"] == "baeldung"
        assert message_token["aud"] == "message-service"

        metadata = (await http.get("/.well-known/openid-configuration")).json()
        assert set(metadata["grant_types_supported"]) == {"authorization_code", "refresh_token", TOKEN_EXCHANGE}
