"""Configuration rules that close protocol attacks at start-up."""

from __future__ import annotations

import pytest

from tokensmith.config.server import GRANT_TYPES, PROMPT_VALUES, ServerConfig
from tokensmith.server.core.metadata import server_metadata


def _client(client_id: str) -> dict[str, object]:
    return {
        "registration": {
            "client-id": client_id,
            "client-secret": "{noop}s",
            "authorization-grant-types": ["client_credentials"],
        }
    }


def test_a_client_id_that_is_also_a_username_is_refused() -> None:
    # RFC 9700 4.15: the client's client-credentials tokens would carry the user's `sub`.
    with pytest.raises(ValueError, match="also usernames"):
        ServerConfig.model_validate(
            {"clients": {"alice": _client("alice")}, "users": [{"username": "alice", "password": "{noop}pw"}]}
        )


def test_distinct_client_ids_and_usernames_are_accepted() -> None:
    config = ServerConfig.model_validate(
        {"clients": {"svc": _client("svc")}, "users": [{"username": "alice", "password": "{noop}pw"}]}
    )
    assert config.client_by_id("svc") is not None


def test_discovery_lists_every_prompt_value_the_authorize_endpoint_accepts() -> None:
    config = ServerConfig.model_validate({"clients": {"svc": _client("svc")}})
    metadata = server_metadata(config, grant_types=GRANT_TYPES, contributors=[])
    assert set(metadata["prompt_values_supported"]) == PROMPT_VALUES
