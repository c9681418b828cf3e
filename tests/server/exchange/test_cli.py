"""`tokensmith exchange` against a running server, and `tokensmith audit` reading what it left."""

from __future__ import annotations

import asyncio
import json
from collections.abc import AsyncIterator

import httpx
import pytest
from tests.server.exchange.http_support import article_server_config, user_access_token
from tests.support.server import running_server
from typer.testing import CliRunner, Result

from tokensmith.cli import app

runner = CliRunner()


async def invoke(*args: str, stdin: str | None = None) -> Result:
    # The commands run their own event loop (or blocking HTTP): keep them off the test's loop.
    return await asyncio.to_thread(runner.invoke, app, list(args), input=stdin)


@pytest.fixture(scope="module")
def database_url(tmp_path_factory: pytest.TempPathFactory) -> str:
    return f"sqlite+aiosqlite:///{tmp_path_factory.mktemp('cli') / 'tokensmith.db'}"


@pytest.fixture(scope="module")
async def base_url(database_url: str) -> AsyncIterator[str]:
    async with running_server(article_server_config(database_url)) as url:
        yield url


@pytest.fixture
async def user_token(base_url: str) -> str:
    async with httpx.AsyncClient(base_url=base_url, timeout=10) as http:
        return await user_access_token(http)


async def test_exchange_prints_the_token_response(base_url: str, user_token: str) -> None:
    result = await invoke(
        "exchange", base_url, "--client-id", "message-service", "--client-secret", "token",
        "--subject-token", "-", "--scope", "message.read", "--decode",
        stdin=user_token + "\n",
    )  # fmt: skip
    assert result.exit_code == 0, result.output
    decoder = json.JSONDecoder()
    response, end = decoder.raw_decode(result.stdout)
    claims, _ = decoder.raw_decode(result.stdout[end:].lstrip())
    assert response["issued_token_type"] == "urn:ietf:params:oauth:token-type:access_token"
    assert (claims["sub"], claims["aud"]) == ("baeldung", "message-service")


async def test_exchange_reports_the_servers_error_and_exits_1(base_url: str, user_token: str) -> None:
    result = await invoke(
        "exchange", base_url, "--client-id", "message-service", "--client-secret", "token",
        "--subject-token", user_token, "--audience", "admin-api",
    )  # fmt: skip
    assert result.exit_code == 1
    assert "invalid_target: this client may not obtain tokens for admin-api" in result.output


async def test_exchange_with_a_wrong_secret_is_invalid_client(base_url: str, user_token: str) -> None:
    result = await invoke(
        "exchange", base_url, "--client-id", "message-service", "--client-secret", "nope",
        "--subject-token", user_token, "--auth-method", "client_secret_post",
    )  # fmt: skip
    assert result.exit_code == 1
    assert "invalid_client" in result.output


async def test_audit_lists_granted_and_refused_exchanges(base_url: str, database_url: str, user_token: str) -> None:
    await invoke(
        "exchange", base_url, "--client-id", "message-service", "--client-secret", "token",
        "--subject-token", user_token, "--scope", "admin",
    )  # fmt: skip
    await invoke(
        "exchange", base_url, "--client-id", "message-service", "--client-secret", "token",
        "--subject-token", user_token,
    )  # fmt: skip
    result = await invoke("audit", "--database-url", database_url, "--json")
    assert result.exit_code == 0, result.output
    events = [json.loads(line) for line in result.stdout.splitlines()]
    assert {e["outcome"] for e in events} >= {"granted", "refused"}
    refused = next(e for e in events if e["reason"] and e["reason"].startswith("invalid_scope"))
    assert (refused["client_id"], refused["subject"]) == ("message-service", "baeldung")

    text = await invoke("audit", "--database-url", database_url, "--outcome", "refused", "-n", "100")
    assert text.exit_code == 0
    assert "refused" in text.stdout
    assert "granted" not in text.stdout


async def test_audit_with_a_bad_config_file_says_so() -> None:
    result = await invoke("audit", "--config", "/nonexistent/tokensmith.yaml")
    assert result.exit_code == 1
    assert "cannot read" in result.output
