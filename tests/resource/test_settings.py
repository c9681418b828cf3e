from __future__ import annotations

from pathlib import Path

import pytest

from tokensmith.resource import load_resource_server_settings

ARTICLE_YAML = """
spring:
  security:
    oauth2:
      resourceserver:
        jwt:
          issuer-uri: http://localhost:9001
          audiences: user-service
"""


async def test_the_articles_resource_server_block_loads(tmp_path: Path) -> None:
    path = tmp_path / "application-userservice.yml"
    path.write_text(ARTICLE_YAML)
    settings = load_resource_server_settings(path)
    assert settings.jwt is not None
    assert settings.jwt.issuer_uri == "http://localhost:9001"
    assert settings.jwt.audiences == ("user-service",)
    validator = settings.jwt.validator()
    assert validator.issuer == "http://localhost:9001"
    assert validator.audiences == frozenset({"user-service"})
    await validator.aclose()


async def test_flat_jwt_mapping_with_lists_and_jwk_set_uri() -> None:
    settings = load_resource_server_settings(
        {
            "issuer-uri": "https://as.example",
            "audiences": ["a", "b"],
            "jwk-set-uri": "https://as.example/keys",
            "jws-algorithms": "ES256",
            "typ": "at+jwt,jwt",
        }
    )
    assert settings.jwt is not None
    validator = settings.jwt.validator(leeway=5)
    assert validator.keys.jwks_uri == "https://as.example/keys"
    assert validator.algorithms == frozenset({"ES256"})
    assert validator.required_typ == frozenset({"at+jwt", "jwt"})
    assert validator.leeway == 5
    await validator.aclose()


@pytest.mark.parametrize(
    ("data", "message"),
    [
        ({"jwt": {"issuer-uri": "https://as"}}, "audiences"),
        ({"jwt": {"issuer-uri": "https://as", "audiences": ""}}, "audiences"),
        ({"jwt": {"issuer-uri": "https://as", "audiences": "x", "issuer_url": "typo"}}, "issuer_url"),
    ],
)
def test_bad_settings_name_the_key(data: dict[str, object], message: str) -> None:
    with pytest.raises(ValueError, match=message):
        load_resource_server_settings(data)
