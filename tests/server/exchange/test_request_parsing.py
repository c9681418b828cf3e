"""RFC 8693 2.1 request parameters (and RFC 8707 2 for resource): each rule as a named test."""

from __future__ import annotations

import pytest
from tests.server.exchange.fakes import exchange_request

from tokensmith.config.exchange import ACCESS_TOKEN_TYPE, JWT_TOKEN_TYPE
from tokensmith.config.server import TOKEN_EXCHANGE
from tokensmith.errors import OAuthError
from tokensmith.server.core.grants.base import TokenRequest
from tokensmith.server.core.grants.token_exchange import MAX_TARGETS, parse_exchange_request


def error_of(request: TokenRequest) -> OAuthError:
    with pytest.raises(OAuthError) as caught:
        parse_exchange_request(request)
    return caught.value


def test_subject_token_is_required() -> None:
    error = error_of(exchange_request(None))
    assert error.error == "invalid_request"
    assert "subject_token" in error.description


def test_subject_token_type_is_required() -> None:
    error = error_of(exchange_request("a.b.c", None))
    assert error.error == "invalid_request"
    assert "subject_token_type" in error.description


def test_actor_token_type_is_required_when_actor_token_is_present() -> None:
    error = error_of(exchange_request("a.b.c", actor_token="x.y.z"))
    assert (error.error, error.description) == ("invalid_request", "actor_token_type is required with actor_token")


def test_actor_token_type_must_not_be_sent_without_actor_token() -> None:
    error = error_of(exchange_request("a.b.c", actor_token_type=ACCESS_TOKEN_TYPE))
    assert error.error == "invalid_request"
    assert "without actor_token" in error.description


@pytest.mark.parametrize(
    "name", ["subject_token", "subject_token_type", "actor_token", "requested_token_type", "scope"]
)
def test_a_parameter_that_may_appear_once_and_appears_twice_is_invalid_request(name: str) -> None:
    params = {
        "grant_type": [TOKEN_EXCHANGE],
        "subject_token": ["a.b.c"],
        "subject_token_type": [ACCESS_TOKEN_TYPE],
        "actor_token": ["d.e.f"],
        "actor_token_type": [JWT_TOKEN_TYPE],
    }
    params[name] = ["one", "two"]
    error = error_of(TokenRequest(params=params))
    assert error.error == "invalid_request"
    assert name in error.description


def test_audience_and_resource_may_repeat_and_keep_their_order() -> None:
    parsed = parse_exchange_request(
        exchange_request(
            "a.b.c",
            audience=["message-service", "billing", "message-service"],
            resource=["https://api.example.com/a", "urn:example:b"],
        )
    )
    assert parsed.audiences == ("message-service", "billing")
    assert parsed.resources == ("https://api.example.com/a", "urn:example:b")


@pytest.mark.parametrize(
    "resource", ["/relative/path", "api.example.com", "https://api.example.com/#frag", "http://[::1/x", "https:"]
)
def test_resource_must_be_an_absolute_uri_without_fragment_else_invalid_target(resource: str) -> None:
    error = error_of(exchange_request("a.b.c", resource=resource))
    assert error.error == "invalid_target"


def test_too_many_targets_are_refused() -> None:
    error = error_of(exchange_request("a.b.c", audience=[f"aud-{i}" for i in range(MAX_TARGETS + 1)]))
    assert error.error == "invalid_target"


def test_scope_is_split_on_spaces_without_duplicates() -> None:
    parsed = parse_exchange_request(exchange_request("a.b.c", scope="message.read  message.read profile"))
    assert parsed.scope == ("message.read", "profile")


def test_scope_with_forbidden_characters_is_invalid_scope() -> None:
    error = error_of(exchange_request("a.b.c", scope='message.read "quoted"'))
    assert error.error == "invalid_scope"


def test_absent_scope_is_none_not_empty() -> None:
    assert parse_exchange_request(exchange_request("a.b.c")).scope is None
