"""npm openid-client 6 and oauth4webapi 3, unmodified, against tokensmith and against Spring Authorization Server."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest
from tests.interop.node_peer import Step, run_peer
from tests.interop.spring_apps import SpringApp
from tests.interop.user_tokens import PASSWORD, SPRING_AS_APP, TOKENSMITH_APP, USERNAME, LoginClient

# Setup may build the Spring jars from Maven Central on a fresh machine, then start JVMs.
pytestmark = [pytest.mark.interop, pytest.mark.timeout(400)]

ACCESS_TOKEN_TYPE = "urn:ietf:params:oauth:token-type:access_token"
ALL_STEPS = (
    "discovery",
    "authorization_code_login",
    "authorization_code_grant",
    "id_token",
    "userinfo",
    "validate_jwt_access_token:authorization_code",
    "refresh",
    "client_credentials",
    "validate_jwt_access_token:client_credentials",
    "token_exchange",
    "validate_jwt_access_token:token_exchange",
    "introspection",
    "revocation",
)
JWT_ACCESS_TOKEN_CHECKS = {name for name in ALL_STEPS if name.startswith("validate_jwt_access_token")}


def peer_config(issuer: str, login: LoginClient) -> dict[str, Any]:
    """The user logs in through ``login``; user-service's own client gets a client-credentials token."""
    return {
        "issuer": issuer,
        "login": {
            "client_id": login.client_id,
            "client_secret": login.client_secret,
            "redirect_uri": login.redirect_uri,
            "audience": "user-service",
            "scope": login.scope,
            "username": USERNAME,
            "password": PASSWORD,
        },
        "client_credentials": {
            "client_id": "user-service",
            "client_secret": "user-secret",
            "scope": "user.read",
            "audience": "user-service",
        },
        # The article's exchange: client message-service swaps the user's token for one aimed at message-service.
        "exchange": {
            "client_id": "message-service",
            "client_secret": "token",
            "scope": "message.read",
            "expected_audience": "message-service",
        },
    }


def report(steps: dict[str, Step]) -> str:
    return "\n".join(step.describe() for step in steps.values())


def assert_ok(steps: dict[str, Step], names: set[str] | tuple[str, ...]) -> None:
    missing = [name for name in names if name not in steps]
    failed = [steps[name] for name in names if name in steps and not steps[name].ok]
    assert not missing, f"peer.mjs printed no line for steps {missing}:\n{report(steps)}"
    assert not failed, f"failed steps:\n{report({s.step: s for s in failed})}"


def test_every_step_works_against_tokensmith(node: str, tokensmith_rfc: str, tmp_path: Path) -> None:
    config = peer_config(tokensmith_rfc, TOKENSMITH_APP)
    steps = run_peer(node, config, tmp_path)
    assert_ok(steps, ALL_STEPS)
    all_detail = report(steps)

    assert steps["id_token"].detail["sub"] == "baeldung", all_detail
    assert steps["userinfo"].detail["sub"] == "baeldung", all_detail
    assert steps["refresh"].detail["rotated"] is True, f"refresh tokens rotate on every use:\n{all_detail}"
    for check in JWT_ACCESS_TOKEN_CHECKS:
        assert steps[check].detail["typ"] == "at+jwt", all_detail
    user_token = steps["validate_jwt_access_token:authorization_code"].detail
    assert (user_token["sub"], user_token["aud"]) == ("baeldung", "user-service"), all_detail
    exchange = steps["token_exchange"].detail
    assert exchange["issued_token_type"] == ACCESS_TOKEN_TYPE, all_detail
    assert exchange["token_type"].lower() == "bearer", all_detail
    assert exchange["expires_in"] > 0, all_detail
    exchanged = steps["validate_jwt_access_token:token_exchange"].detail
    assert exchanged["sub"] == "baeldung", all_detail
    assert exchanged["aud"] in ("message-service", ["message-service"]), all_detail
    assert exchanged["scope"] == "message.read", all_detail
    assert steps["revocation"].detail["active_after_revocation"] is False, all_detail


def test_spring_authorization_server_fails_only_the_rfc9068_typ_check(
    node: str, spring_authorization_server: SpringApp, tmp_path: Path
) -> None:
    """The same peer against Spring's server: its access tokens carry no `typ`, which oauth4webapi requires."""
    config = peer_config(spring_authorization_server.url, SPRING_AS_APP)
    steps = run_peer(node, config, tmp_path)
    assert_ok(steps, tuple(name for name in ALL_STEPS if name not in JWT_ACCESS_TOKEN_CHECKS))
    for check in JWT_ACCESS_TOKEN_CHECKS:
        step = steps[check]
        expected = f"expected oauth4webapi to refuse Spring's typ-less access token:\n{step.describe()}"
        assert not step.ok, expected
        assert "typ" in step.detail["message"], expected
    assert steps["refresh"].detail["rotated"] is False, "Spring Authorization Server reuses refresh tokens"
    # Spring Authorization Server writes the exchanged token's aud as the requesting client and scope as an array.
    claims = steps["token_exchange"].detail["claims"]
    assert claims["aud"] in ("message-service", ["message-service"]), report(steps)
    assert claims["scope"] == ["message.read"], report(steps)
