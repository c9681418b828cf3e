"""The client credentials grant."""

from __future__ import annotations

import pytest
from tests.server.configs import SERVICE_CLIENT
from tests.server.protocol import as_client, grant

from tokensmith.errors import OAuthError
from tokensmith.server.core.context import ServerContext
from tokensmith.server.core.grants.base import AuthenticatedClient


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


def with_audiences(ctx: ServerContext, *audiences: str) -> AuthenticatedClient:
    client = as_client(ctx, SERVICE_CLIENT)
    return AuthenticatedClient(config=client.config.model_copy(update={"audiences": audiences}), method=client.method)


async def test_resource_restricts_the_audience_to_what_was_asked(ctx: ServerContext) -> None:
    # RFC 8707 2: the token is for the resources the request names, each one the client may have.
    client = with_audiences(ctx, "https://a.example/api", "https://b.example/api")
    both = await grant(ctx, client, grant_type="client_credentials")
    assert ctx.keys.verify(both.access_token).claims["aud"] == ["https://a.example/api", "https://b.example/api"]
    one = await grant(ctx, client, grant_type="client_credentials", resource="https://b.example/api")
    assert ctx.keys.verify(one.access_token).claims["aud"] == "https://b.example/api"


@pytest.mark.parametrize(
    "resource",
    [
        "https://c.example/api",  # not one of the client's audiences
        "/api",  # not absolute
        "https://a.example/api#part",  # a fragment
        "https://[::1/api",  # unparsable
    ],
)
async def test_a_resource_the_client_may_not_have_is_invalid_target(ctx: ServerContext, resource: str) -> None:
    client = with_audiences(ctx, "https://a.example/api")
    with pytest.raises(OAuthError) as caught:
        await grant(ctx, client, grant_type="client_credentials", resource=resource)
    assert caught.value.error == "invalid_target"
    assert resource.split("#")[0] in caught.value.description
