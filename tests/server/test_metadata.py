"""Discovery metadata built from the configuration, and its extension point."""

from __future__ import annotations

from typing import Any

from tests.server.configs import config_data, server_config

from tokensmith.config.server import ServerConfig
from tokensmith.server.core import metadata as metadata_module
from tokensmith.server.core.metadata import enabled_grant_types, register_metadata, server_metadata


def test_grant_types_follow_the_clients() -> None:
    data = config_data()
    data["clients"] = {k: v for k, v in data["clients"].items() if k == "service"}
    assert enabled_grant_types(ServerConfig.model_validate(data)) == ["client_credentials"]
    assert enabled_grant_types(server_config()) == ["authorization_code", "refresh_token", "client_credentials"]


def test_contributors_add_fields() -> None:
    def extra(config: ServerConfig) -> dict[str, Any]:
        return {"x_test_field": config.issuer}

    register_metadata(extra)
    register_metadata(extra)  # registering twice adds it once
    try:
        assert metadata_module._CONTRIBUTORS.count(extra) == 1
        assert server_metadata(server_config())["x_test_field"] == "http://localhost:9001"
    finally:
        metadata_module._CONTRIBUTORS.remove(extra)
