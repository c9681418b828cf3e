"""The article's user-service client settings ("Token Exchange in Spring Security", section 4.2), for any issuer."""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any


def article_client_properties(
    issuer: str, more_registrations: Mapping[str, Mapping[str, Any]] | None = None
) -> dict[str, Any]:
    """``spring.security.oauth2.client``: registration ``my-message-service`` (token exchange as client
    message-service) on provider ``my-auth-server`` at ``issuer``; ``more_registrations`` use the same provider."""
    return {
        "registration": {
            "my-message-service": {
                "provider": "my-auth-server",
                "client-id": "message-service",
                "client-secret": "token",
                "authorization-grant-type": "urn:ietf:params:oauth:grant-type:token-exchange",
                "client-authentication-method": ["client_secret_basic"],
                "scope": ["message.read"],
                "client-name": "my-message-service",
            },
            **(more_registrations or {}),
        },
        "provider": {"my-auth-server": {"issuer-uri": issuer}},
    }
