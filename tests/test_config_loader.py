"""The configuration loader: YAML, Spring's layout, TOKENSMITH_* overrides, one-line errors."""

from __future__ import annotations

from pathlib import Path

import pytest

from tokensmith.config import load_config
from tokensmith.errors import ConfigError


def test_environment_overrides_top_level_and_nested_settings() -> None:
    config = load_config(
        None,
        {"TOKENSMITH_DATABASE_URL": "sqlite+aiosqlite:///x.db", "TOKENSMITH_KEYS__ACCESS_TOKEN_ALGORITHM": "RS256"},
    )
    assert config.database_url == "sqlite+aiosqlite:///x.db"
    assert config.keys.access_token_algorithm == "RS256"


def test_prefixed_variables_that_name_no_setting_are_not_configuration() -> None:
    # TOKENSMITH_CLIENT_SECRET is `tokensmith exchange`'s; exporting it must not break `tokensmith serve`.
    environ = {"TOKENSMITH_CLIENT_SECRET": "s3cret", "TOKENSMITH_CONFIG": "a.yaml", "TOKENSMITH_PORT": "9100"}
    assert load_config(None, environ).port == 9100


def test_a_bad_override_names_the_key() -> None:
    with pytest.raises(ConfigError, match=r"keys\.access-token-algorithm"):
        load_config(None, {"TOKENSMITH_KEYS__ACCESS_TOKEN_ALGORITHM": "none"})


def test_a_spring_application_yml_is_read_as_is(tmp_path: Path) -> None:
    spring = tmp_path / "application.yml"
    spring.write_text(
        """
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
              scopes: ["openid", "message:read"]
"""
    )
    config = load_config(spring, {})
    client = config.client_by_id("message-service")
    assert client is not None
    assert client.registration.scopes == ("openid", "message:read")


def test_yaml_errors_name_file_and_line(tmp_path: Path) -> None:
    broken = tmp_path / "broken.yaml"
    broken.write_text("clients:\n  a: [unclosed\n")
    with pytest.raises(ConfigError, match=r"broken\.yaml: not valid YAML \(line \d+"):
        load_config(broken, {})


@pytest.mark.parametrize(
    ("given", "used"),
    [
        ("sqlite:///./tokensmith.db", "sqlite+aiosqlite:///./tokensmith.db"),
        ("sqlite+aiosqlite:////var/lib/ts.db", "sqlite+aiosqlite:////var/lib/ts.db"),
        ("postgresql://ts:pw@db:5432/ts", "postgresql+asyncpg://ts:pw@db:5432/ts"),
        ("postgres://ts:pw@db/ts", "postgresql+asyncpg://ts:pw@db/ts"),
        ("postgresql+asyncpg://ts@db/ts?ssl=require", "postgresql+asyncpg://ts@db/ts?ssl=require"),
    ],
)
def test_a_database_url_without_a_driver_gets_the_async_one(given: str, used: str) -> None:
    assert load_config(None, {"TOKENSMITH_DATABASE_URL": given}).database_url == used


@pytest.mark.parametrize(
    ("given", "message"),
    [
        ("sqlite+pysqlite:///x.db", "driver 'pysqlite' is not supported for sqlite: use sqlite\\+aiosqlite"),
        ("postgresql+psycopg2://db/ts", "driver 'psycopg2' is not supported for postgresql: use postgresql\\+asyncpg"),
        ("mysql+aiomysql://db/ts", "database 'mysql' is not supported"),
        ("tokensmith.db", "must be a database URL"),
    ],
)
def test_an_unsupported_database_url_is_one_clear_error(given: str, message: str) -> None:
    with pytest.raises(ConfigError, match=rf"database-url.*{message}"):
        load_config(None, {"TOKENSMITH_DATABASE_URL": given})
