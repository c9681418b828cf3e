"""Resource-server library: validate bearer tokens from any standards-compliant authorization server.

FastAPI dependencies live in :mod:`tokensmith.resource.fastapi` (imported only by those who use FastAPI).
"""

from tokensmith.resource.bearer import TokenVerifier, bearer_token
from tokensmith.resource.errors import (
    BearerTokenError,
    InsufficientScope,
    InvalidToken,
    MissingToken,
    ValidatorUnavailable,
)
from tokensmith.resource.introspection import IntrospectionValidator
from tokensmith.resource.middleware import BearerTokenMiddleware
from tokensmith.resource.principal import Actor, Principal
from tokensmith.resource.settings import (
    JwtSettings,
    OpaqueTokenSettings,
    ResourceServerSettings,
    load_resource_server_settings,
)
from tokensmith.resource.validator import TokenValidator

__all__ = [
    "Actor",
    "BearerTokenError",
    "BearerTokenMiddleware",
    "InsufficientScope",
    "IntrospectionValidator",
    "InvalidToken",
    "JwtSettings",
    "MissingToken",
    "OpaqueTokenSettings",
    "Principal",
    "ResourceServerSettings",
    "TokenValidator",
    "TokenVerifier",
    "ValidatorUnavailable",
    "bearer_token",
    "load_resource_server_settings",
]
