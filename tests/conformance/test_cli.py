"""``tokensmith conformance exchange``: the table or JSON, exit code 1 on a failed check, secrets never printed."""

from __future__ import annotations

import json

import httpx
import pytest
from tests.conformance.fake_server import CLIENT_ID, CLIENT_SECRET, ISSUER, FakeExchangeServer
from typer.testing import CliRunner

from tokensmith.cli import app
from tokensmith.cli import conformance as command
from tokensmith.conformance import ExchangeTarget, Report, run_exchange_conformance

runner = CliRunner()


def serve(monkeypatch: pytest.MonkeyPatch, server: FakeExchangeServer) -> list[ExchangeTarget]:
    """Route the command's runner to ``server``; returns the targets it was given."""
    seen: list[ExchangeTarget] = []

    def against_fake(target: ExchangeTarget) -> Report:
        seen.append(target)
        with httpx.Client(transport=server.transport(), timeout=target.timeout) as http:
            return run_exchange_conformance(target, http=http)

    monkeypatch.setattr(command, "run_exchange_conformance", against_fake)
    return seen


def arguments(server: FakeExchangeServer, *extra: str) -> list[str]:
    return [
        "conformance", "exchange", "--issuer", f"{ISSUER}/", "--client-id", CLIENT_ID,
        "--subject-token", server.issue("alice"), "--actor-token", server.issue("service-a"), *extra,
    ]  # fmt: skip


def test_a_conformant_server_exits_0_with_a_table(monkeypatch: pytest.MonkeyPatch) -> None:
    server = FakeExchangeServer()
    targets = serve(monkeypatch, server)
    result = runner.invoke(app, arguments(server), env={"TOKENSMITH_CLIENT_SECRET": CLIENT_SECRET})
    assert result.exit_code == 0, result.output
    assert targets[0].issuer == ISSUER  # the trailing slash is dropped
    assert "RFC 8693 2.1     no subject_token: invalid_request" in result.output
    assert "0 fail" in result.output
    assert CLIENT_SECRET not in result.output


def test_a_failed_check_exits_1_and_json_lists_it(monkeypatch: pytest.MonkeyPatch) -> None:
    server = FakeExchangeServer({"skips-signature-check"})
    serve(monkeypatch, server)
    args = arguments(server, "--client-secret", CLIENT_SECRET, "--json", "--audience", "api", "--scope", "read")
    result = runner.invoke(app, args)
    assert result.exit_code == 1, result.output
    document = json.loads(result.output)
    failed = {c["id"] for c in document["checks"] if c["result"] == "fail"}
    assert failed == {"forged-subject-token", "forged-actor-token"}
    assert document["issuer"] == ISSUER
    assert CLIENT_SECRET not in result.output


def test_a_token_can_come_from_stdin(monkeypatch: pytest.MonkeyPatch) -> None:
    server = FakeExchangeServer()
    targets = serve(monkeypatch, server)
    subject = server.issue("alice")
    args = ["conformance", "exchange", "--issuer", ISSUER, "--client-id", CLIENT_ID, "--subject-token", "-"]
    result = runner.invoke(app, [*args, "--client-secret", CLIENT_SECRET, "--timeout", "3"], input=subject + "\n")
    assert result.exit_code == 0, result.output
    assert (targets[0].subject_token, targets[0].timeout) == (subject, 3.0)


def test_an_unknown_auth_method_is_refused() -> None:
    args = ["conformance", "exchange", "--issuer", ISSUER, "--client-id", CLIENT_ID, "--client-secret", "x"]
    result = runner.invoke(app, [*args, "--auth-method", "private_key_jwt"])
    assert result.exit_code == 1
    assert "--auth-method must be client_secret_basic or client_secret_post" in result.output
