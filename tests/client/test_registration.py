from __future__ import annotations

from pathlib import Path

import pytest
from joserfc.jwk import RSAKey

from tokensmith.client import (
    TOKEN_EXCHANGE,
    Registration,
    RegistrationError,
    basic_credentials,
    load_client_properties,
)

ARTICLE_YAML = """
spring:
  security:
    oauth2:
      client:
        registration:
          my-message-service:
            provider: my-auth-server
            client-id: "message-service"
            client-secret: "token"
            authorization-grant-type: "urn:ietf:params:oauth:grant-type:token-exchange"
            client-authentication-method:
              - "client_secret_basic"
            scope:
              - message.read
            client-name: my-message-service
        provider:
          my-auth-server:
            issuer-uri: http://localhost:9001
"""


def test_the_articles_registration_loads_line_by_line(tmp_path: Path) -> None:
    path = tmp_path / "application-userservice.yml"
    path.write_text(ARTICLE_YAML)
    properties = load_client_properties(path)
    registration = properties.registrations()["my-message-service"]
    assert registration.client_id == "message-service"
    assert registration.client_secret == "token"
    assert registration.authorization_grant_type == TOKEN_EXCHANGE
    assert registration.client_authentication_method == "client_secret_basic"
    assert registration.scopes == ("message.read",)
    assert registration.issuer_uri == "http://localhost:9001"
    assert registration.token_uri is None
    assert properties.registration["my-message-service"].client_name == "my-message-service"
    assert "'token'" not in repr(registration)  # the secret stays out of logs
    assert "'token'" not in repr(properties)


def test_single_values_and_comma_lists_are_accepted() -> None:
    properties = load_client_properties(
        {
            "registration": {
                "svc": {
                    "client-id": "svc",
                    "client-secret": "s",
                    "client-authentication-method": "client_secret_post",
                    "scope": "a,b c",
                }
            },
            "provider": {"svc": {"token-uri": "http://as.example/token"}},
        }
    )
    registration = properties.registrations()["svc"]  # provider defaults to the registration's id, as in Spring
    assert registration.client_authentication_method == "client_secret_post"
    assert registration.scopes == ("a", "b", "c")
    assert registration.token_uri == "http://as.example/token"


@pytest.mark.parametrize(
    ("registration", "message"),
    [
        ({"client-id": "x", "client-secret": "s", "provider": "nowhere"}, "provider 'nowhere'"),
        ({"client-id": "x", "client-secret": "s", "provider": "p", "client-sekret": "typo"}, "client-sekret"),
        ({"client-id": "x", "provider": "p"}, "needs client-secret"),
        ({"client-id": "x", "provider": "p", "client-authentication-method": "private_key_jwt"}, "private-key"),
        ({"client-id": "x", "client-secret": "s", "provider": "p", "client-authentication-method": "magic"}, "x"),
    ],
)
def test_bad_registrations_name_the_problem(registration: dict[str, object], message: str) -> None:
    data = {"registration": {"x": registration}, "provider": {"p": {"issuer-uri": "http://as"}}}
    with pytest.raises(RegistrationError, match=message):
        load_client_properties(data)


def test_a_provider_needs_an_issuer_or_a_token_uri() -> None:
    with pytest.raises(RegistrationError, match="issuer-uri"):
        load_client_properties({"registration": {}, "provider": {"p": {"jwk-set-uri": "http://as/jwks"}}})


def test_private_key_jwt_key_loads_from_a_pem_file(tmp_path: Path) -> None:
    key = RSAKey.generate_key(2048, parameters={"kid": "k1"})
    pem = tmp_path / "client.pem"
    pem.write_bytes(key.as_pem(private=True))
    properties = load_client_properties(
        {
            "registration": {
                "svc": {
                    "client-id": "svc",
                    "client-authentication-method": ["private_key_jwt"],
                    "private-key": str(pem),
                }
            },
            "provider": {"svc": {"issuer-uri": "http://as"}},
        }
    )
    registration = properties.registrations()["svc"]
    assert registration.signing_alg == "RS256"
    assert registration.signing_key is not None
    assert registration.signing_key.is_private


def test_a_registration_in_code_checks_its_credentials() -> None:
    with pytest.raises(RegistrationError, match="needs a secret"):
        Registration(registration_id="r", client_id="c", issuer_uri="http://as")
    with pytest.raises(RegistrationError, match="issuer_uri or token_uri"):
        Registration(registration_id="r", client_id="c", client_secret="s")


def test_basic_credentials_form_encode_before_base64() -> None:
    # RFC 6749 2.3.1: "a b" -> "a+b", "p:ss%" -> "p%3Ass%25", then Base64 of "a+b:p%3Ass%25".
    assert basic_credentials("a b", "p:ss%") == "Basic YStiOnAlM0FzcyUyNQ=="
