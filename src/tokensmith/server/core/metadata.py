"""Authorization server metadata (RFC 8414) and OpenID Provider metadata (OpenID Connect Discovery 1.0).

Both documents are built from the configuration and from what the server registered: ``grant_types_supported``
lists the registered grants some client has enabled, and each registered feature (a grant, private_key_jwt client
authentication) adds its own fields through its ``metadata`` method.
"""

from __future__ import annotations

from collections.abc import Collection, Iterable, Mapping
from typing import Any, Protocol

from tokensmith.config.server import GRANT_TYPES, PROMPT_VALUES, ServerConfig
from tokensmith.server.core.claims import PASSWORD_ACR, supported_claims


class MetadataContributor(Protocol):
    """A registered feature that adds fields to both discovery documents."""

    def metadata(self, config: ServerConfig) -> Mapping[str, Any]: ...


def enabled_grant_types(config: ServerConfig, registered: Collection[str]) -> list[str]:
    """The registered grant types some client may use."""
    enabled = {grant for client in config.clients.values() for grant in client.registration.authorization_grant_types}
    return [grant for grant in GRANT_TYPES if grant in enabled and grant in registered]


def server_metadata(
    config: ServerConfig, *, grant_types: Collection[str], contributors: Iterable[MetadataContributor]
) -> dict[str, Any]:
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
        "grant_types_supported": enabled_grant_types(config, grant_types),
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
    for contributor in contributors:
        metadata.update(contributor.metadata(config))
    return metadata
