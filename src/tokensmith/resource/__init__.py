"""Resource-server library: validate bearer and DPoP-bound tokens from any standards-compliant authorization server.

FastAPI dependencies live in :mod:`tokensmith.resource.fastapi` (imported only by those who use FastAPI).
"""

from tokensmith.resource.bearer import TokenVerifier, bearer_token
from tokensmith.resource.dpop import DPoPChecker, DPoPMode, MemoryReplayCache, ReplayCache
from tokensmith.resource.errors import (
    BearerTokenError,
    DPoPProofError,
    InsufficientScope,
    InvalidToken,
    MissingToken,
    UseDPoPNonce,
    ValidatorUnavailable,
)
from tokensmith.resource.introspection import IntrospectionValidator
from tokensmith.resource.metadata import ProtectedResourceMetadata, ProtectedResourceMetadataApp
from tokensmith.resource.middleware import BearerTokenMiddleware
from tokensmith.resource.principal import Actor, Principal
from tokensmith.resource.settings import (
    JwtSettings,
    OpaqueTokenSettings,
    ResourceServerSettings,
    load_resource_server_settings,
)
from tokensmith.resource.transaction_token import (
    TXN_TOKEN_HEADER,
    InsufficientTransactionScope,
    MissingTransactionToken,
    TransactionToken,
    TransactionTokenError,
    TransactionTokenMiddleware,
    TransactionTokenValidator,
)
from tokensmith.resource.validator import TokenValidator

__all__ = [
    "TXN_TOKEN_HEADER",
    "Actor",
    "BearerTokenError",
    "BearerTokenMiddleware",
    "DPoPChecker",
    "DPoPMode",
    "DPoPProofError",
    "InsufficientScope",
    "InsufficientTransactionScope",
    "IntrospectionValidator",
    "InvalidToken",
    "JwtSettings",
    "MemoryReplayCache",
    "MissingToken",
    "MissingTransactionToken",
    "OpaqueTokenSettings",
    "Principal",
    "ProtectedResourceMetadata",
    "ProtectedResourceMetadataApp",
    "ReplayCache",
    "ResourceServerSettings",
    "TokenValidator",
    "TokenVerifier",
    "TransactionToken",
    "TransactionTokenError",
    "TransactionTokenMiddleware",
    "TransactionTokenValidator",
    "UseDPoPNonce",
    "ValidatorUnavailable",
    "bearer_token",
    "load_resource_server_settings",
]
