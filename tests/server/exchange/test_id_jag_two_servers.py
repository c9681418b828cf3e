"""Cross-domain access with an Identity Assertion JWT Authorization Grant, end to end: two tokensmith servers
(``tokensmith serve`` processes on 127.0.0.1, two issuers). The user signs in at the identity provider (server A);
the client exchanges the ID token at A for an ID-JAG aimed at server B, then presents it to B's token endpoint
with the JWT bearer grant and gets B's access token. The configuration is the worked example of
docs/exchange-policy.md ("Cross-domain access with ID-JAG")."""

from __future__ import annotations

import asyncio
import base64
import json
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import httpx
import pytest
from tests.interop.user_tokens import LoginClient, user_token
from tests.support.serve_process import ServeProcess, serve_process
from tests.support.server import free_port

from tokensmith.resource import TokenValidator

TOKEN_EXCHANGE = "urn:ietf:params:oauth:grant-type:token-exchange"
JWT_BEARER = "urn:ietf:params:oauth:grant-type:jwt-bearer"
ID_TOKEN = "urn:ietf:params:oauth:token-type:id_token"
ID_JAG = "urn:ietf:params:oauth:token-type:id-jag"
CHAT_API = "https://api.chat.example/"
REDIRECT = "http://127.0.0.1:8080/login/oauth2/code/"
KEYS = {"access-token-algorithm": "ES256", "id-token-algorithm": "ES256"}


def login_client(client_id: str) -> dict[str, Any]:
    return {
        "registration": {
            "client-id": client_id,
            "client-secret": f"{{noop}}{client_id}-secret",
            "authorization-grant-types": ["authorization_code", TOKEN_EXCHANGE],
            "redirect-uris": [REDIRECT + client_id],
            "scopes": ["openid", "profile"],
        }
    }


def idp_config(tmp_path: Path, chat: str) -> dict[str, Any]:
    """Server A, the user's identity provider: client `wiki` may obtain ID-JAGs for B, where it is `wiki-app`."""
    wiki, short = login_client("wiki"), login_client("wiki-short")
    targets = {chat: {"client-id": "wiki-app", "scopes": ["chat.read", "chat.history"], "resources": [CHAT_API]}}
    # Another authorization server with the same client-id and resource: only the grant's `aud` tells them apart.
    elsewhere = {"https://elsewhere.example": targets[chat]}
    wiki["token-exchange"] = {"id-jag": {"audiences": {**targets, **elsewhere}}}
    short["token-exchange"] = {"id-jag": {"audiences": targets, "time-to-live": "1s"}}
    return {
        "database-url": f"sqlite+aiosqlite:///{tmp_path / 'idp.db'}",
        "keys": KEYS,
        "clients": {"wiki": wiki, "wiki-short": short},
        "users": [{"username": "baeldung", "password": "{noop}password"}],
    }


def chat_config(tmp_path: Path, idp: str) -> dict[str, Any]:
    """Server B, the resource's authorization server: trusts A and lets `wiki-app` present A's ID-JAGs."""

    def client(client_id: str) -> dict[str, Any]:
        return {
            "registration": {
                "client-id": client_id,
                "client-secret": f"{{noop}}{client_id}-secret",
                "authorization-grant-types": [JWT_BEARER],
                "scopes": ["chat.read", "chat.history"],
            },
            "jwt-bearer": {"issuers": [idp]},
            "id-jag": {"scopes": ["chat.read"], "resources": [CHAT_API]},
        }

    return {
        "database-url": f"sqlite+aiosqlite:///{tmp_path / 'chat.db'}",
        "keys": KEYS,
        "tokens": {"clock-skew": "1s"},
        "trusted-issuers": [{"issuer": idp, "subject-prefix": "idp|", "copy-claims": ["auth_time"]}],
        "clients": {"wiki-app": client("wiki-app"), "notes-app": client("notes-app")},
    }


@dataclass
class Servers:
    idp: ServeProcess
    chat: ServeProcess


@pytest.fixture(scope="module")
def servers(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Servers]:
    tmp_path = tmp_path_factory.mktemp("id-jag")
    idp_port, chat_port = free_port(), free_port()
    idp_url, chat_url = f"http://127.0.0.1:{idp_port}", f"http://127.0.0.1:{chat_port}"
    with (
        serve_process(idp_config(tmp_path, chat_url), tmp_path, name="idp", port=idp_port) as idp,
        serve_process(chat_config(tmp_path, idp_url), tmp_path, name="chat", port=chat_port) as chat,
    ):
        yield Servers(idp, chat)


def claims_of(token: str) -> tuple[dict[str, Any], dict[str, Any]]:
    header, payload = (json.loads(base64.urlsafe_b64decode(p + "=" * (-len(p) % 4))) for p in token.split(".")[:2])
    return header, payload


async def sign_in(http: httpx.AsyncClient, servers: Servers, client_id: str = "wiki") -> str:
    login = LoginClient(client_id, f"{client_id}-secret", REDIRECT + client_id, "openid profile")
    tokens = await user_token(http, servers.idp.url, login)
    id_token: str = tokens["id_token"]
    return id_token


async def exchange(
    http: httpx.AsyncClient, servers: Servers, id_token: str, client_id: str = "wiki", audience: str | None = None
) -> httpx.Response:
    return await http.post(
        f"{servers.idp.url}/oauth2/token",
        data={
            "grant_type": TOKEN_EXCHANGE,
            "requested_token_type": ID_JAG,
            "audience": audience or servers.chat.url,
            "resource": CHAT_API,
            "scope": "chat.read chat.history",
            "subject_token": id_token,
            "subject_token_type": ID_TOKEN,
        },
        auth=(client_id, f"{client_id}-secret"),
    )


async def present(
    http: httpx.AsyncClient, servers: Servers, assertion: str, client_id: str = "wiki-app"
) -> httpx.Response:
    return await http.post(
        f"{servers.chat.url}/oauth2/token",
        data={"grant_type": JWT_BEARER, "assertion": assertion},
        auth=(client_id, f"{client_id}-secret"),
    )


async def id_jag(http: httpx.AsyncClient, servers: Servers, **kwargs: Any) -> str:
    response = await exchange(http, servers, await sign_in(http, servers), **kwargs)
    assert response.status_code == 200, response.text
    token: str = response.json()["access_token"]
    return token


def refused(response: httpx.Response, description: str) -> None:
    assert response.status_code == 400, response.text
    body = response.json()
    assert body["error"] == "invalid_grant"
    assert description in body["error_description"]


async def test_the_user_reaches_the_other_domain_with_an_id_jag(servers: Servers) -> None:
    async with httpx.AsyncClient(timeout=30) as http:
        id_token = await sign_in(http, servers)
        response = await exchange(http, servers, id_token)
        assert response.status_code == 200, response.text
        body = response.json()
        assert body["issued_token_type"] == ID_JAG
        assert body["token_type"] == "N_A"
        assert "refresh_token" not in body
        header, grant = claims_of(body["access_token"])
        assert header["typ"] == "oauth-id-jag+jwt"
        assert grant["iss"] == servers.idp.url
        assert grant["aud"] == servers.chat.url
        assert grant["client_id"] == "wiki-app"
        assert grant["sub"] == "baeldung"
        assert grant["resource"] == CHAT_API
        assert grant["scope"] == "chat.read chat.history"
        assert isinstance(grant["auth_time"], int)  # the ID token's authentication claims travel with the grant

        answer = await present(http, servers, body["access_token"])
        assert answer.status_code == 200, answer.text
        tokens = answer.json()
        assert tokens["token_type"] == "Bearer"
        assert tokens["scope"] == "chat.read"  # B's policy narrows the grant
        assert "refresh_token" not in tokens
        validator = TokenValidator(issuer=servers.chat.url, audience=CHAT_API)
        try:
            access = await validator.validate(tokens["access_token"])
        finally:
            await validator.aclose()
        assert access.claims["sub"] == "idp|baeldung"
        assert access.claims["client_id"] == "wiki-app"
        assert access.claims["auth_time"] == grant["auth_time"]  # B's copy-claims for A

        idp_metadata = (await http.get(f"{servers.idp.url}/.well-known/oauth-authorization-server")).json()
        assert idp_metadata["identity_chaining_requested_token_types_supported"] == [ID_JAG]
        chat_metadata = (await http.get(f"{servers.chat.url}/.well-known/oauth-authorization-server")).json()
        assert chat_metadata["authorization_grant_profiles_supported"] == ["urn:ietf:params:oauth:grant-profile:id-jag"]
        assert JWT_BEARER in chat_metadata["grant_types_supported"]


async def test_a_replayed_id_jag_is_refused(servers: Servers) -> None:
    async with httpx.AsyncClient(timeout=30) as http:
        grant = await id_jag(http, servers)
        assert (await present(http, servers, grant)).status_code == 200
        refused(await present(http, servers, grant), "was already used")


async def test_an_id_jag_for_another_server_is_refused(servers: Servers) -> None:
    async with httpx.AsyncClient(timeout=30) as http:
        grant = await id_jag(http, servers, audience="https://elsewhere.example")
        refused(await present(http, servers, grant), "assertion is not for this server")


async def test_an_id_jag_of_another_client_is_refused(servers: Servers) -> None:
    async with httpx.AsyncClient(timeout=30) as http:
        grant = await id_jag(http, servers)
        refused(await present(http, servers, grant, client_id="notes-app"), "not for the authenticated client")


async def test_an_id_token_is_not_an_id_jag(servers: Servers) -> None:
    async with httpx.AsyncClient(timeout=30) as http:
        id_token = await sign_in(http, servers)
        # Typed JWT, not oauth-id-jag+jwt, and for the wiki (its `aud`), not for B.
        refused(await present(http, servers, id_token), "assertion is not for this server")


async def test_an_expired_id_jag_is_refused(servers: Servers) -> None:
    async with httpx.AsyncClient(timeout=30) as http:
        response = await exchange(http, servers, await sign_in(http, servers, "wiki-short"), client_id="wiki-short")
        assert response.status_code == 200, response.text
        assert response.json()["expires_in"] == 1
        await asyncio.sleep(3)  # past its exp and B's one second of clock skew
        refused(await present(http, servers, response.json()["access_token"]), "assertion has expired")


async def test_the_idp_refuses_an_audience_its_policy_does_not_name(servers: Servers) -> None:
    async with httpx.AsyncClient(timeout=30) as http:
        response = await exchange(http, servers, await sign_in(http, servers), audience="https://evil.example")
        assert response.status_code == 400
        assert response.json()["error"] == "invalid_target"
        assert "https://evil.example" in response.json()["error_description"]
