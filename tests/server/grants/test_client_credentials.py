"""The client credentials grant."""

from __future__ import annotations

import pytest
from tests.server.configs import SERVICE_CLIENT
from tests.server.protocol import as_client, grant

from tokensmith.errors import OAuthError
from tokensmith.server.core.context import ServerContext


async def test_defaults_to_registered_scopes_and_configured_audience(ctx: ServerContext) -> None:
    response = await grant(ctx, as_client(ctx, SERVICE_CLIENT, "client_secret_post"), grant_type="client_credentials")
    body = response.to_dict()
    assert body["scope"] == "reports.read reports.write"
    assert body["expires_in"] == 300
    assert "refresh_token" not in body
    assert "id_token" not in body
    claims = ctx.keys.verify(response.access_token).claims
    assert claims["sub"] == SERVICE_CLIENT
    assert claims["client_id"] == SERVICE_CLIENT
    assert claims["aud"] == "report-api"


async def test_requested_scope_must_be_registered(ctx: ServerContext) -> None:
    client = as_client(ctx, SERVICE_CLIENT)
    narrowed = await grant(ctx, client, grant_type="client_credentials", scope="reports.read")
    assert narrowed.scope == ("reports.read",)
    with pytest.raises(OAuthError) as caught:
        await grant(ctx, client, grant_type="client_credentials", scope="reports.read admin")
    assert caught.value.error == "invalid_scope"
    assert "admin" in caught.value.description


async def test_public_clients_cannot_use_it(ctx: ServerContext) -> None:
    with pytest.raises(OAuthError) as caught:
        await grant(ctx, as_client(ctx, SERVICE_CLIENT, "none"), grant_type="client_credentials")
    assert caught.value.error == "unauthorized_client"
