"""Resource indicators (RFC 8707) in the user's grants: the authorization request names the resources the tokens
are for, each one of the client's audiences; token and refresh requests may narrow them, never widen."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest
from tests.server.configs import WEB_CLIENT, WEB_REDIRECT, config_data
from tests.server.protocol import as_client, grant, new_code, redeem_code

from tokensmith.config.server import ServerConfig
from tokensmith.errors import OAuthError
from tokensmith.server.core.context import ServerContext

MAIL = "https://mail.example/api"
FILES = "https://files.example/api"


@pytest.fixture
def config(tmp_path: Path) -> ServerConfig:
    data = config_data()
    data["clients"]["web"]["audiences"] = [MAIL, FILES]
    data["database-url"] = f"sqlite+aiosqlite:///{tmp_path / 'tokensmith.db'}"
    return ServerConfig.model_validate(data)


async def tokens(ctx: ServerContext, code: str, **params: str) -> dict[str, Any]:
    return await redeem_code(ctx, code, WEB_CLIENT, WEB_REDIRECT, **params)


async def refresh(ctx: ServerContext, refresh_token: str, **params: str) -> dict[str, Any]:
    response = await grant(
        ctx, as_client(ctx, WEB_CLIENT), grant_type="refresh_token", refresh_token=refresh_token, **params
    )
    return response.to_dict()


def aud(ctx: ServerContext, body: dict[str, Any]) -> Any:
    return ctx.keys.verify(body["access_token"]).claims["aud"]


async def test_without_resource_the_tokens_are_for_the_clients_audiences(ctx: ServerContext) -> None:
    first = await tokens(ctx, await new_code(ctx, WEB_CLIENT, WEB_REDIRECT))
    assert aud(ctx, first) == [MAIL, FILES]
    assert aud(ctx, await refresh(ctx, first["refresh_token"])) == [MAIL, FILES]


async def test_the_authorized_resource_holds_for_the_grant_and_its_refreshes(ctx: ServerContext) -> None:
    first = await tokens(ctx, await new_code(ctx, WEB_CLIENT, WEB_REDIRECT, resource=MAIL))
    assert aud(ctx, first) == MAIL
    again = await refresh(ctx, first["refresh_token"])
    assert aud(ctx, again) == MAIL
    # A refresh may not widen the grant to another of the client's audiences.
    with pytest.raises(OAuthError) as caught:
        await refresh(ctx, again["refresh_token"], resource=FILES)
    assert (caught.value.error, caught.value.status_code) == ("invalid_target", 400)
    assert FILES in caught.value.description


async def test_token_requests_narrow_the_authorized_resources(ctx: ServerContext) -> None:
    code = await new_code(ctx, WEB_CLIENT, WEB_REDIRECT, resource=[MAIL, FILES])
    first = await tokens(ctx, code, resource=FILES)
    assert aud(ctx, first) == FILES
    # The refresh token keeps the whole grant: each access token may be for one of its resources.
    assert aud(ctx, await refresh(ctx, first["refresh_token"], resource=MAIL)) == MAIL


@pytest.mark.parametrize(
    "resource",
    [
        "https://other.example/api",  # not one of the client's audiences
        "relative/path",
        "https://mail.example/api#fragment",
    ],
)
async def test_the_authorization_request_refuses_other_resources(ctx: ServerContext, resource: str) -> None:
    with pytest.raises(OAuthError) as caught:
        await new_code(ctx, WEB_CLIENT, WEB_REDIRECT, resource=resource)
    assert caught.value.error == "invalid_target"


async def test_a_token_request_cannot_add_a_resource_the_code_was_not_for(ctx: ServerContext) -> None:
    code = await new_code(ctx, WEB_CLIENT, WEB_REDIRECT, resource=MAIL)
    with pytest.raises(OAuthError) as caught:
        await tokens(ctx, code, resource=FILES)
    assert caught.value.error == "invalid_target"
