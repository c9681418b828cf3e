"""Server configurations the server tests share (built in code; the YAML loader has its own tests)."""

from __future__ import annotations

from typing import Any

import bcrypt

from tokensmith.config.server import ServerConfig
from tokensmith.server.core.passwords import hash_password
from tokensmith.server.key_encryption import new_key_text

WEB_CLIENT = "messaging-client-oidc"
WEB_SECRET = "web secret:with/odd+chars"
WEB_REDIRECT = "http://127.0.0.1:8080/login/oauth2/code/messaging-client-oidc"
WEB_LOGOUT_REDIRECT = "http://127.0.0.1:8080/logged-out"
SPA_CLIENT = "spa"
SPA_REDIRECT = "http://127.0.0.1:3000/callback"
SERVICE_CLIENT = "reporting-service"
SERVICE_SECRET = "service-secret"
CONSENT_CLIENT = "consent-app"
CONSENT_SECRET = "consent-secret"
CONSENT_REDIRECT = "https://consent.example/cb"
PLAIN_CLIENT = "plain-app"  # confidential, no PKCE required
PLAIN_SECRET = "plain-secret"
PLAIN_REDIRECT = "https://plain.example/cb"

USERNAME = "alice"
PASSWORD = "correct horse battery staple"

_ARGON2_PASSWORD = hash_password(PASSWORD)
# bcrypt with the lowest cost, so tests stay fast.
_BCRYPT_SERVICE_SECRET = "{bcrypt}" + bcrypt.hashpw(SERVICE_SECRET.encode(), bcrypt.gensalt(rounds=4)).decode()


def config_data(**overrides: Any) -> dict[str, Any]:
    data: dict[str, Any] = {
        "issuer": "http://localhost:9001",  # running_server replaces it with its own URL
        "clients": {
            "web": {
                "registration": {
                    "client-id": WEB_CLIENT,
                    "client-name": "Messaging client",
                    "client-secret": "{noop}" + WEB_SECRET,
                    "client-authentication-methods": ["client_secret_basic"],
                    "authorization-grant-types": ["authorization_code", "refresh_token"],
                    "redirect-uris": [WEB_REDIRECT],
                    "post-logout-redirect-uris": [WEB_LOGOUT_REDIRECT],
                    "scopes": ["openid", "profile", "message.read"],
                },
                "require-proof-key": True,
                "audiences": ["user-service"],
            },
            "spa": {
                "registration": {
                    "client-id": SPA_CLIENT,
                    "client-authentication-methods": ["none"],
                    "authorization-grant-types": ["authorization_code", "refresh_token"],
                    "redirect-uris": [SPA_REDIRECT],
                    "scopes": ["openid", "profile"],
                },
            },
            "service": {
                "registration": {
                    "client-id": SERVICE_CLIENT,
                    "client-secret": _BCRYPT_SERVICE_SECRET,
                    "client-authentication-methods": ["client_secret_post", "client_secret_basic"],
                    "authorization-grant-types": ["client_credentials"],
                    "scopes": ["reports.read", "reports.write"],
                },
                "audiences": ["report-api"],
            },
            "consent": {
                "registration": {
                    "client-id": CONSENT_CLIENT,
                    "client-secret": "{noop}" + CONSENT_SECRET,
                    "authorization-grant-types": ["authorization_code"],
                    "redirect-uris": [CONSENT_REDIRECT],
                    "scopes": ["openid", "profile"],
                },
                "require-authorization-consent": True,
                "audiences": ["https://calendar.example", "https://mail.example"],
            },
            "plain": {
                "registration": {
                    "client-id": PLAIN_CLIENT,
                    "client-secret": "{noop}" + PLAIN_SECRET,
                    "client-authentication-methods": ["client_secret_post"],
                    "authorization-grant-types": ["authorization_code", "refresh_token"],
                    "redirect-uris": [PLAIN_REDIRECT, PLAIN_REDIRECT + "?tenant=a"],
                    "scopes": ["openid", "message.read"],
                },
            },
        },
        "users": [
            {
                "username": USERNAME,
                "password": _ARGON2_PASSWORD,
                "claims": {"name": "Alice Liddell", "email": "alice@example.com", "department": "wonderland"},
            },
            {"username": "bob", "password": "{noop}bob-password"},
        ],
    }
    data.update(overrides)
    return data


def server_config(database_url: str | None = None, **overrides: Any) -> ServerConfig:
    data = config_data(**overrides)
    if database_url is not None:
        data["database-url"] = database_url
        if not database_url.startswith("sqlite"):  # PostgreSQL: the key-encryption key must be configured
            data["keys"] = {**data.get("keys", {}), "encryption-key": new_key_text()}
    return ServerConfig.model_validate(data)
