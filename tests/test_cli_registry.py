"""`tokensmith clients` and `tokensmith users`: printed blocks load back as valid configuration."""

from __future__ import annotations

import re
from pathlib import Path

from typer.testing import CliRunner

from tokensmith.cli import app
from tokensmith.config import load_config
from tokensmith.server.core.passwords import verify_password

EXAMPLE = Path(__file__).resolve().parents[1] / "examples" / "authorization-server.yaml"
runner = CliRunner()


def test_clients_new_prints_a_block_whose_hash_matches_the_secret_shown_once(tmp_path: Path) -> None:
    result = runner.invoke(
        app,
        ["clients", "new", "--client-id", "billing", "--grant-type", "client_credentials", "--scope", "billing.read"],
    )
    assert result.exit_code == 0, result.output
    secret = re.search(r"store it now\): (\S+)", result.stderr)
    assert secret is not None
    assert secret.group(1) not in result.stdout  # only the hash goes in the block
    config_file = tmp_path / "server.yaml"
    config_file.write_text(result.stdout)
    config = load_config(config_file, environ={})
    client = config.client_by_id("billing")
    assert client is not None
    assert client.registration.scopes == ("billing.read",)
    assert client.registration.client_secret is not None
    assert verify_password(client.registration.client_secret, secret.group(1))
    assert not verify_password(client.registration.client_secret, secret.group(1) + "x")


def test_clients_new_public_code_client_requires_pkce_and_has_no_secret(tmp_path: Path) -> None:
    result = runner.invoke(
        app,
        [
            "clients", "new", "--client-id", "spa", "--public",
            "--grant-type", "authorization_code", "--redirect-uri", "http://127.0.0.1:3000/cb",
        ],
    )  # fmt: skip
    assert result.exit_code == 0, result.output
    assert "store it now" not in result.stderr
    config_file = tmp_path / "server.yaml"
    config_file.write_text(result.stdout)
    client = load_config(config_file, environ={}).client_by_id("spa")
    assert client is not None
    assert client.registration.is_public
    assert client.require_proof_key


def test_clients_new_refuses_an_invalid_registration_in_one_line() -> None:
    result = runner.invoke(app, ["clients", "new", "--client-id", "spa", "--grant-type", "authorization_code"])
    assert result.exit_code == 1
    assert "redirect-uris is required" in result.stderr
    assert "Traceback" not in result.output


def test_clients_and_users_list_never_print_secrets() -> None:
    clients = runner.invoke(app, ["clients", "list", "--config", str(EXAMPLE)])
    users = runner.invoke(app, ["users", "list", "--config", str(EXAMPLE)])
    assert clients.exit_code == 0
    assert users.exit_code == 0
    assert "message-service" in clients.stdout
    assert "messaging-client-oidc" in clients.stdout
    assert "baeldung" in users.stdout
    for output in (clients.stdout, users.stdout):
        assert "{noop}" not in output
        assert "password" not in output


def test_users_new_hashes_the_password_and_keeps_claims(tmp_path: Path) -> None:
    result = runner.invoke(
        app, ["users", "new", "--username", "alice", "--claim", "email=a@x.example", "--stdin"], input="s3cret\n"
    )
    assert result.exit_code == 0, result.output
    assert "s3cret" not in result.stdout
    config_file = tmp_path / "server.yaml"
    config_file.write_text(result.stdout)
    user = load_config(config_file, environ={}).user_by_name("alice")
    assert user is not None
    assert user.claims == {"email": "a@x.example"}
    assert verify_password(user.password, "s3cret")


def test_users_new_refuses_a_malformed_claim() -> None:
    result = runner.invoke(app, ["users", "new", "--username", "alice", "--claim", "novalue", "--stdin"], input="x\n")
    assert result.exit_code == 1
    assert "NAME=VALUE" in result.stderr
