"""ID-JAG policies as configuration: a bad setting fails at start with a message naming the file and the key."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest
import yaml

from tokensmith.config import load_config
from tokensmith.config.federation import JWT_BEARER_GRANT as JWT_BEARER
from tokensmith.config.server import TOKEN_EXCHANGE
from tokensmith.errors import ConfigError

IDP = "https://idp.example"


def server(**wiki: Any) -> dict[str, Any]:
    registration = {
        "client-id": "wiki",
        "client-secret": "{noop}s",
        "authorization-grant-types": [TOKEN_EXCHANGE, JWT_BEARER],
    }
    registration.update(wiki.pop("registration", {}))
    return {
        "issuer": "https://as.example",
        "trusted-issuers": [{"issuer": IDP}],
        "clients": {"wiki": {"registration": registration, **wiki}},
    }


def load(tmp_path: Path, data: dict[str, Any]) -> None:
    path = tmp_path / "server.yaml"
    path.write_text(yaml.safe_dump(data))
    load_config(path, {})


def test_both_policies_load(tmp_path: Path) -> None:
    load(
        tmp_path,
        server(
            **{
                "token-exchange": {"id-jag": {"audiences": {"https://chat.example": {"client-id": "wiki-at-chat"}}}},
                "jwt-bearer": {"issuers": [IDP]},
                "id-jag": {"scopes": ["chat.read"]},
            }
        ),
    )


@pytest.mark.parametrize(
    ("wiki", "message"),
    [
        ({"id-jag": {}}, r"clients\.wiki.*id-jag needs the identity providers .* under jwt-bearer\.issuers"),
        (
            {"token-exchange": {"id-jag": {"audiences": {"chat": {"client-id": "x"}}}}},
            r"clients\.wiki\.token-exchange\.id-jag\.audiences.*http\(s\) URL",
        ),
        (
            {"token-exchange": {"id-jag": {"audiences": {"https://chat.example": {}}}}},
            r"clients\.wiki\.token-exchange\.id-jag\.audiences\.https://chat\.example\.client-id",
        ),
        (
            {"token-exchange": {"id-jag": {"audiences": {"https://as.example/": {"client-id": "x"}}}}},
            r"this server's own issuer",
        ),
        (
            {"registration": {"authorization-grant-types": [TOKEN_EXCHANGE]}, "id-jag": {}},
            r"id-jag needs urn:ietf:params:oauth:grant-type:jwt-bearer",
        ),
        (
            {
                "registration": {"authorization-grant-types": [JWT_BEARER]},
                "token-exchange": {"id-jag": {"audiences": {"https://chat.example": {"client-id": "x"}}}},
            },
            r"token-exchange\.id-jag needs urn:ietf:params:oauth:grant-type:token-exchange",
        ),
        (
            {
                "registration": {"client-authentication-methods": ["none"], "client-secret": None},
                "jwt-bearer": {"issuers": [IDP]},
                "id-jag": {},
            },
            r"confidential client",
        ),
    ],
)
def test_a_bad_policy_names_its_key(tmp_path: Path, wiki: dict[str, Any], message: str) -> None:
    with pytest.raises(ConfigError, match=message):
        load(tmp_path, server(**wiki))
