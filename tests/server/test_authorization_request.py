"""The authorization request, validated without HTTP."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

import pytest
from tests.server.configs import PLAIN_CLIENT, PLAIN_REDIRECT, WEB_CLIENT, WEB_REDIRECT, server_config

from tokensmith.errors import OAuthError
from tokensmith.server.core.authorization import (
    AuthorizationRequest,
    redirect_with,
    resolve_client_redirect,
    validate_authorization_request,
)
from tokensmith.server.http.authorize import _needs_login
from tokensmith.store.records import SessionRecord

CONFIG = server_config()


def validate(**params: str) -> AuthorizationRequest:
    query = {"client_id": [PLAIN_CLIENT], "redirect_uri": [PLAIN_REDIRECT], "response_type": ["code"]}
    query.update({k: [v] for k, v in params.items()})
    return validate_authorization_request(query, resolve_client_redirect(query, CONFIG))


def test_defaults_scope_to_the_registered_scopes() -> None:
    request = validate()
    assert request.scope == ("openid", "message.read")
    assert request.code_challenge is None
    assert request.prompt == frozenset()


def test_scope_order_kept_and_duplicates_dropped() -> None:
    assert validate(scope="message.read openid message.read").scope == ("message.read", "openid")


def test_unknown_client_is_not_redirectable() -> None:
    with pytest.raises(OAuthError) as caught:
        resolve_client_redirect({"client_id": ["x"], "redirect_uri": [WEB_REDIRECT]}, CONFIG)
    assert caught.value.error == "invalid_client"
    with pytest.raises(OAuthError):
        resolve_client_redirect({"client_id": [WEB_CLIENT], "redirect_uri": [WEB_REDIRECT.upper()]}, CONFIG)


def test_prompt_none_cannot_be_combined() -> None:
    with pytest.raises(OAuthError) as caught:
        validate(prompt="none login")
    assert caught.value.error == "invalid_request"


def test_redirect_with_keeps_query_and_escapes() -> None:
    assert (
        redirect_with("https://a.example/cb?x=1", {"code": "c d", "state": None}) == "https://a.example/cb?x=1&code=c+d"
    )


def test_max_age_and_prompt_login_need_a_fresh_login() -> None:
    now = datetime.now(UTC)
    session = SessionRecord(
        session_hash="h", subject="alice", auth_time=now - timedelta(seconds=100), expires_at=now, csrf_secret="s"
    )
    assert not _needs_login(validate(), session, now.timestamp())
    assert not _needs_login(validate(max_age="200"), session, now.timestamp())
    assert _needs_login(validate(max_age="50"), session, now.timestamp())
    assert _needs_login(validate(prompt="login"), session, now.timestamp())
