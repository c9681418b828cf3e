"""Grant handlers: the pure protocol core of the token endpoint, one module per grant type.

The token endpoint dispatches on ``GRANT_HANDLERS``; adding a grant is one entry here.
"""

from tokensmith.server.core.grants.authorization_code import AuthorizationCodeGrant
from tokensmith.server.core.grants.base import AuthenticatedClient, GrantHandler, TokenRequest, TokenResponse
from tokensmith.server.core.grants.client_credentials import ClientCredentialsGrant
from tokensmith.server.core.grants.refresh_token import RefreshTokenGrant
from tokensmith.server.core.grants.token_exchange import TokenExchangeGrant

GRANT_HANDLERS: dict[str, GrantHandler] = {
    handler.grant_type: handler
    for handler in (
        AuthorizationCodeGrant(),
        RefreshTokenGrant(),
        ClientCredentialsGrant(),
        TokenExchangeGrant(),
    )
}

__all__ = [
    "GRANT_HANDLERS",
    "AuthenticatedClient",
    "AuthorizationCodeGrant",
    "ClientCredentialsGrant",
    "GrantHandler",
    "RefreshTokenGrant",
    "TokenExchangeGrant",
    "TokenRequest",
    "TokenResponse",
]
