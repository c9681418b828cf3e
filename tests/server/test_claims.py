"""Which user claims are released where (server/claims.py)."""

from __future__ import annotations

import pytest
from tests.server.configs import server_config

from tokensmith.config.server import UserConfig
from tokensmith.errors import OAuthError
from tokensmith.server.core.claims import (
    ID_TOKEN_CLAIMS,
    id_token_user_claims,
    parse_claims_request,
    released_claims,
    supported_claims,
)

USER = UserConfig.model_validate(
    {
        "username": "ada",
        "password": "{noop}pw",
        "claims": {
            "name": "Ada",
            "email": "ada@example.com",
            "address": {"country": "GB"},
            "phone_number": "+44",
            "team": "engines",
        },
    }
)


def test_scopes_release_their_standard_claims() -> None:
    assert released_claims(USER, {"openid"}) == {"sub": "ada", "team": "engines"}
    assert released_claims(USER, {"openid", "profile"}) == {
        "sub": "ada",
        "name": "Ada",
        "preferred_username": "ada",
        "team": "engines",
    }
    assert released_claims(USER, {"openid", "address", "phone"}) == {
        "sub": "ada",
        "address": {"country": "GB"},
        "phone_number": "+44",
        "team": "engines",
    }


def test_claims_requested_by_name_are_released_when_the_user_has_them() -> None:
    claims = released_claims(USER, {"openid"}, ["email", "birthdate"])
    assert claims == {"sub": "ada", "email": "ada@example.com", "team": "engines"}
    assert id_token_user_claims(USER, ["name", "team", "nickname"]) == {"name": "Ada"}  # standard claims only
    assert id_token_user_claims(None, ["name"]) == {}


def test_parse_claims_request_keeps_the_two_targets() -> None:
    raw = '{"userinfo": {"name": null}, "id_token": {"acr": {"essential": true, "values": ["x"], "other": 1}}, "x": 1}'
    assert parse_claims_request(raw) == {
        "userinfo": {"name": None},
        "id_token": {"acr": {"essential": True, "values": ["x"]}},
    }
    assert parse_claims_request(None) == {}
    with pytest.raises(OAuthError, match="values must be a JSON array"):
        parse_claims_request('{"id_token": {"acr": {"values": "x"}}}')


def test_supported_claims_lists_what_configured_users_hold() -> None:
    config = server_config(users=[USER.model_dump(by_alias=True)])
    supported = supported_claims(config)
    assert supported[: len(ID_TOKEN_CLAIMS)] == list(ID_TOKEN_CLAIMS)
    assert set(supported) - set(ID_TOKEN_CLAIMS) == {
        "address",
        "email",
        "name",
        "phone_number",
        "preferred_username",
        "team",
    }
