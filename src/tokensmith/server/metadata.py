"""Authorization server metadata (RFC 8414) and OpenID Provider metadata (OpenID Connect Discovery 1.0).

Both documents are built from the configuration: ``grant_types_supported`` lists the grants some client has
enabled. Features kept in other modules add their fields with :func:`register_metadata`.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

from tokensmith.config.server import GRANT_TYPES, PROMPT_VALUES, ServerConfig
from tokensmith.server.claims import PASSWORD_ACR, supported_claims

MetadataContributor = Callable[[ServerConfig], dict[str, Any]]

_CONTRIBUTORS: list[MetadataContributor] = []


def register_metadata(contributor: MetadataContributor) -> MetadataContributor:
    """Add fields to both discovery documents (usable as a decorator)."""
    if contributor not in _CONTRIBUTORS:
        _CONTRIBUTORS.append(contributor)
    return contributor


def enabled_grant_types(config: ServerConfig) -> list[str]:
    enabled = {grant for client in config.clients.values() for grant in client.registration.authorization_grant_types}
    return [grant for grant in GRANT_TYPES if grant in enabled]


def server_metadata(config: ServerConfig) -> dict[str, Any]:
    issuer = config.issuer
    methods = sorted(
        {m for client in config.clients.values() for m in client.registration.client_authentication_methods}
        or {"client_secret_basic"}
    )
    confidential_methods = [m for m in methods if m != "none"] or ["client_secret_basic"]
    scopes = sorted({"openid", *(s for c in config.clients.values() for s in c.registration.scopes)})
    metadata: dict[str, Any] = {
        "issuer": issuer,
        "authorization_endpoint": f"{issuer}/oauth2/authorize",
        "token_endpoint": f"{issuer}/oauth2/token",
        "jwks_uri": f"{issuer}/oauth2/jwks",
        "userinfo_endpoint": f"{issuer}/userinfo",
        "end_session_endpoint": f"{issuer}/connect/logout",
        "introspection_endpoint": f"{issuer}/oauth2/introspect",
        "revocation_endpoint": f"{issuer}/oauth2/revoke",
        "response_types_supported": ["code"],
        "response_modes_supported": ["query"],
        "grant_types_supported": enabled_grant_types(config),
        "subject_types_supported": ["public"],
        "scopes_supported": scopes,
        "claims_supported": supported_claims(config),
        "acr_values_supported": [PASSWORD_ACR],
        "token_endpoint_auth_methods_supported": methods,
        "introspection_endpoint_auth_methods_supported": confidential_methods,
        "revocation_endpoint_auth_methods_supported": methods,
        "code_challenge_methods_supported": ["S256"],
        "id_token_signing_alg_values_supported": sorted(
            {config.keys.id_token_algorithm}
            | {a for c in config.clients.values() if (a := c.token.id_token_signature_algorithm) is not None}
        ),
        "authorization_response_iss_parameter_supported": True,
        "prompt_values_supported": sorted(PROMPT_VALUES),
        "claims_parameter_supported": True,
        "request_parameter_supported": False,
        "request_uri_parameter_supported": False,
    }
    for contributor in _CONTRIBUTORS:
        metadata.update(contributor(config))
    return metadata
