"""The shipped configuration files say what the article says (ids, secrets, grants, scopes, audiences)."""

from __future__ import annotations

from tokensmith.config.loader import load_config
from tokensmith.demo.settings import (
    CONFIG_FILES,
    load_client_app_settings,
    load_message_service_settings,
    load_user_service_settings,
    shipped_config_path,
)
from tokensmith.demo.topology import Topology

TOKEN_EXCHANGE = "urn:ietf:params:oauth:grant-type:token-exchange"


def test_the_files_ship_as_package_data() -> None:
    for name in CONFIG_FILES:
        assert shipped_config_path(name).is_file(), name


def test_authorization_server_registers_the_articles_clients_and_user() -> None:
    config = load_config(shipped_config_path("authorization-server.yaml"), environ={})
    assert config.issuer == "http://localhost:9001"
    exchange = config.client_by_id("message-service")
    assert exchange is not None
    assert exchange.registration.client_secret == "{noop}token"
    assert exchange.registration.client_authentication_methods == ("client_secret_basic",)
    assert exchange.registration.authorization_grant_types == (TOKEN_EXCHANGE,)
    assert exchange.registration.scopes == ("openid", "message.read")
    web = config.client_by_id("messaging-client")
    assert web is not None
    assert web.require_proof_key
    assert web.audiences == ("user-service",)
    user = config.user_by_name("baeldung")
    assert user is not None
    assert user.password == "{noop}password"


def test_user_service_mirrors_sections_4_1_and_4_2() -> None:
    settings = load_user_service_settings(Topology())
    assert settings.jwt.issuer_uri == "http://localhost:9001"
    assert settings.jwt.audiences == ("user-service",)
    registration = settings.client.registration["my-message-service"]
    assert registration.client_id == "message-service"
    assert registration.client_secret == "token"
    assert registration.authorization_grant_type == TOKEN_EXCHANGE
    assert registration.client_authentication_method == "client_secret_basic"
    assert registration.scope == ("message.read",)
    assert settings.client.provider["my-auth-server"].issuer_uri == "http://localhost:9001"
    assert settings.target_resource_server_url == "http://localhost:8082/message"


def test_message_service_needs_its_audience_and_message_read() -> None:
    settings = load_message_service_settings(Topology())
    assert settings.jwt.audiences == ("message-service",)
    assert settings.required_scope == "message.read"


def test_client_app_is_registration_messaging_client_oidc() -> None:
    settings = load_client_app_settings(Topology())
    assert settings.registration_id == "messaging-client-oidc"
    assert settings.registration.client_id == "messaging-client"
    assert settings.registration.redirect_uri == "http://localhost:8080/login/oauth2/code/messaging-client-oidc"
    assert settings.target_resource_server_url == "http://localhost:8081/user/message"
