"""``reuse-refresh-tokens: true`` (Spring's setting): no rotation, the client keeps its refresh token."""

from __future__ import annotations

from pathlib import Path

import pytest
from tests.server.configs import WEB_CLIENT, WEB_REDIRECT, config_data
from tests.server.protocol import VERIFIER, as_client, grant, new_code

from tokensmith.config.server import ServerConfig
from tokensmith.server.core.context import ServerContext


@pytest.fixture
def config(tmp_path: Path) -> ServerConfig:
    data = config_data()
    data["clients"]["web"]["token"] = {"reuse-refresh-tokens": True}
    data["database-url"] = f"sqlite+aiosqlite:///{tmp_path / 'tokensmith.db'}"
    return ServerConfig.model_validate(data)


async def test_refresh_token_is_reused(ctx: ServerContext) -> None:
    client = as_client(ctx, WEB_CLIENT)
    code = await new_code(ctx, WEB_CLIENT, WEB_REDIRECT, scope="message.read")
    first = await grant(
        ctx, client, grant_type="authorization_code", code=code, redirect_uri=WEB_REDIRECT, code_verifier=VERIFIER
    )
    assert first.refresh_token is not None
    for _ in range(2):
        again = await grant(ctx, client, grant_type="refresh_token", refresh_token=first.refresh_token)
        assert again.refresh_token is None
        assert again.scope == ("message.read",)
