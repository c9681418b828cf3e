"""Discovery metadata built from the configuration and from what the server registered."""

from __future__ import annotations

import dataclasses
from typing import Any

import pytest
from tests.server.configs import config_data, server_config

from tokensmith.config.server import GRANT_TYPES, TOKEN_EXCHANGE, ServerConfig
from tokensmith.server.core.context import ServerContext, grant_registry
from tokensmith.server.core.grants.client_credentials import ClientCredentialsGrant
from tokensmith.server.core.metadata import enabled_grant_types, server_metadata


def test_grant_types_follow_the_clients() -> None:
    data = config_data()
    data["clients"] = {k: v for k, v in data["clients"].items() if k == "service"}
    assert enabled_grant_types(ServerConfig.model_validate(data), GRANT_TYPES) == ["client_credentials"]
    assert enabled_grant_types(server_config(), GRANT_TYPES) == [
        "authorization_code",
        "refresh_token",
        "client_credentials",
    ]


def test_only_registered_grants_are_listed() -> None:
    assert enabled_grant_types(server_config(), {"client_credentials", TOKEN_EXCHANGE}) == ["client_credentials"]


class Extra:
    def metadata(self, config: ServerConfig) -> dict[str, Any]:
        return {"x_test_field": config.issuer}


def test_contributors_add_fields() -> None:
    config = server_config()
    assert server_metadata(config, grant_types=GRANT_TYPES, contributors=[Extra()])["x_test_field"] == config.issuer
    assert "x_test_field" not in server_metadata(config, grant_types=GRANT_TYPES, contributors=[])


def exchanging(config: ServerConfig) -> ServerConfig:
    data = config.model_dump(by_alias=True)
    registration = data["clients"]["service"]["registration"]
    registration["authorization-grant-types"] = [*registration["authorization-grant-types"], TOKEN_EXCHANGE]
    return ServerConfig.model_validate(data)


def test_discovery_publishes_what_the_context_registered(ctx: ServerContext) -> None:
    ctx = dataclasses.replace(ctx, config=exchanging(ctx.config))
    metadata = ctx.metadata()
    assert TOKEN_EXCHANGE in metadata["grant_types_supported"]
    assert "token_exchange_subject_token_types_supported" in metadata
    # The grant's module is imported all the same: what is published follows the registry, not the imports.
    without = dataclasses.replace(
        ctx, grants=grant_registry(g for g in ctx.grants.values() if g.grant_type != TOKEN_EXCHANGE)
    )
    metadata = without.metadata()
    assert TOKEN_EXCHANGE not in metadata["grant_types_supported"]
    assert "token_exchange_subject_token_types_supported" not in metadata


def test_a_grant_type_registers_once() -> None:
    with pytest.raises(ValueError, match="registered twice"):
        grant_registry([ClientCredentialsGrant(), ClientCredentialsGrant()])
