"""The policy as configuration: bad settings fail at load time with a message naming the key."""

from __future__ import annotations

from datetime import timedelta
from typing import Any

import pytest
from pydantic import ValidationError
from tests.server.exchange.fakes import article_config

from tokensmith.config.exchange import ID_TOKEN_TYPE, INPUT_TOKEN_TYPES, SAML2_TOKEN_TYPE, ExchangePolicy, TrustedIssuer
from tokensmith.server.core.grants.token_exchange import token_exchange_metadata


def test_the_defaults_reproduce_the_article() -> None:
    policy = article_config().clients["message-service"].token_exchange
    assert (policy.impersonation, policy.delegation, policy.scope_backing) == (True, False, "none")
    assert policy.default_audience is None
    assert policy.subject_token_issuers == ("self",)


def test_a_policy_naming_an_untrusted_issuer_is_refused() -> None:
    with pytest.raises(ValidationError, match="not under trusted-issuers"):
        article_config(policy={"subject-token-issuers": ["self", "https://idp.example"]})


def test_a_policy_naming_a_trusted_issuer_loads() -> None:
    config = article_config(
        policy={"actor-token-issuers": ["https://idp.example"]},
        **{"trusted-issuers": [{"issuer": "https://idp.example"}]},
    )
    assert config.trusted_issuers[0].key_refetch_cool_down.total_seconds() == 30


@pytest.mark.parametrize("alg", ["HS256", "none", "XYZ"])
def test_a_trusted_issuer_may_only_use_asymmetric_algorithms(alg: str) -> None:
    with pytest.raises(ValidationError, match="asymmetric"):
        TrustedIssuer.model_validate({"issuer": "https://idp.example", "algorithms": [alg]})


def test_a_trusted_issuer_must_be_an_http_url() -> None:
    with pytest.raises(ValidationError, match="http"):
        TrustedIssuer.model_validate({"issuer": "idp.example"})


@pytest.mark.parametrize(
    ("settings", "message"),
    [
        ({"requested-token-types": [SAML2_TOKEN_TYPE]}, "cannot issue"),
        ({"audiences": {"https://api.example/#x": {}}}, "fragment"),
        ({"scope-mappings": {"a": ["b"]}}, "scope-backing: mapping"),
        ({"max-delegation-depth": 0}, "greater than or equal to 1"),
        ({"scope-backing": "loose"}, "none"),
        ({"unknown-key": 1}, "Extra inputs"),
    ],
)
def test_bad_policy_settings_are_refused(settings: dict[str, Any], message: str) -> None:
    with pytest.raises(ValidationError, match=message):
        ExchangePolicy.model_validate(settings)


def test_durations_read_like_springs() -> None:
    assert ExchangePolicy.model_validate({"token-time-to-live": "2m"}).token_time_to_live == timedelta(minutes=2)


def test_discovery_names_token_types_only_when_some_client_may_exchange() -> None:
    config = article_config()
    metadata = token_exchange_metadata(config)
    assert metadata["token_exchange_subject_token_types_supported"] == list(INPUT_TOKEN_TYPES)
    assert ID_TOKEN_TYPE not in metadata["token_exchange_requested_token_types_supported"]
    with_id_tokens = article_config(policy={"requested-token-types": [ID_TOKEN_TYPE]})
    assert token_exchange_metadata(with_id_tokens)["token_exchange_requested_token_types_supported"] == [ID_TOKEN_TYPE]
    without = config.model_copy(update={"clients": {"web": config.clients["messaging-client-oidc"]}})
    assert token_exchange_metadata(without) == {}
