"""The access-token `typ` header: RFC 9068's at+jwt by default, JWT where the article's Spring services read it.

Spring Security resource servers refuse `typ` at+jwt (Boot 3.5: "JOSE header typ (type) at+jwt not allowed",
Boot 4: "the given typ value needs to be one of [JWT]"), so the shipped configurations of the article give its two
audiences JWT, and a configuration in Spring Authorization Server's layout defaults to JWT for every audience.
"""

from __future__ import annotations

import base64
import json
from pathlib import Path
from typing import Any

import httpx
import yaml
from tests.support.server import running_server

from tokensmith.config.loader import load_config
from tokensmith.config.server import ServerConfig
from tokensmith.demo.settings import ARTICLE_TOPOLOGY, load_server_config

ROOT = Path(__file__).resolve().parents[1]
ARTICLE_AUDIENCES_JWT = {"user-service": "JWT", "message-service": "JWT"}
SPRING_LAYOUT = """
spring:
  security:
    oauth2:
      authorizationserver:
        issuer: http://localhost:9001
        client:
          message-service:
            registration:
              client-id: "message-service"
              client-secret: "{noop}token"
              client-authentication-methods: ["client_secret_basic"]
              authorization-grant-types: ["urn:ietf:params:oauth:grant-type:token-exchange"]
              scopes: ["openid", "message.read"]
"""


def test_tokensmiths_own_default_is_rfc9068() -> None:
    config = load_config(None, environ={})
    assert config.tokens.access_token_typ == "at+jwt"
    assert config.tokens.access_token_typ_by_audience == {}


def test_the_example_gives_the_articles_spring_services_jwt() -> None:
    config = load_config(ROOT / "examples" / "authorization-server.yaml", environ={})
    assert config.tokens.access_token_typ_by_audience == ARTICLE_AUDIENCES_JWT
    assert config.tokens.access_token_typ == "at+jwt"


def test_the_demo_authorization_server_gives_them_jwt_too() -> None:
    config = load_server_config(ARTICLE_TOPOLOGY)
    assert config.tokens.access_token_typ_by_audience == ARTICLE_AUDIENCES_JWT


def test_a_spring_application_yml_defaults_to_jwt(tmp_path: Path) -> None:
    spring = tmp_path / "application.yml"
    spring.write_text(SPRING_LAYOUT)
    assert load_config(spring, environ={}).tokens.access_token_typ == "JWT"
    # The environment override still wins, as for any setting.
    overridden = load_config(spring, environ={"TOKENSMITH_TOKENS__ACCESS_TOKEN_TYP": "at+jwt"})
    assert overridden.tokens.access_token_typ == "at+jwt"


def test_a_spring_application_yml_can_ask_for_rfc9068(tmp_path: Path) -> None:
    spring = tmp_path / "application.yml"
    spring.write_text(SPRING_LAYOUT + "tokens:\n  access-token-typ: at+jwt\n")
    assert load_config(spring, environ={}).tokens.access_token_typ == "at+jwt"


def _header(token: str) -> dict[str, Any]:
    segment = token.split(".")[0]
    header: dict[str, Any] = json.loads(base64.urlsafe_b64decode(segment + "=" * (-len(segment) % 4)))
    return header


def _service_client(client_id: str, audience: str) -> dict[str, Any]:
    return {
        "registration": {
            "client-id": client_id,
            "client-secret": "{noop}secret",
            "client-authentication-methods": ["client_secret_basic"],
            "authorization-grant-types": ["client_credentials"],
            "scopes": ["read"],
        },
        "audiences": [audience],
    }


async def test_each_token_carries_the_typ_of_its_audience(tmp_path: Path) -> None:
    data = {
        "clients": {
            "spring": _service_client("spring-caller", "spring-api"),
            "rfc": _service_client("rfc-caller", "rfc-api"),
        },
        "tokens": {"access-token-typ-by-audience": {"spring-api": "JWT"}},
    }
    path = tmp_path / "config.yaml"
    path.write_text(yaml.safe_dump(data))
    config: ServerConfig = load_config(path, environ={})
    async with running_server(config) as issuer, httpx.AsyncClient(base_url=issuer, timeout=10) as http:
        headers = {}
        for client_id in ("spring-caller", "rfc-caller"):
            response = await http.post(
                "/oauth2/token", data={"grant_type": "client_credentials"}, auth=(client_id, "secret")
            )
            assert response.status_code == 200, response.text
            headers[client_id] = _header(response.json()["access_token"])
    assert headers["spring-caller"]["typ"] == "JWT"
    assert headers["rfc-caller"]["typ"] == "at+jwt"
