"""Client library: obtain tokens (RFC 8693 token exchange, client credentials) and send them downstream.

Configured like Spring's ``spring.security.oauth2.client``; works with any standards-compliant authorization server.
"""

from tokensmith.client.auth import ClientCredentialsAuth, TokenExchangeAuth
from tokensmith.client.client_auth import basic_credentials, client_assertion
from tokensmith.client.discovery import MetadataCache, discover, metadata_urls
from tokensmith.client.dpop import DPoPKey
from tokensmith.client.errors import (
    AuthorizationServerUnavailable,
    DiscoveryError,
    RegistrationError,
    TokenClientError,
    TokenRequestError,
)
from tokensmith.client.exchanger import TokenExchanger
from tokensmith.client.grant import ACCESS_TOKEN_TYPE, JWT_TOKEN_TYPE, IssuedToken
from tokensmith.client.registration import (
    CLIENT_CREDENTIALS,
    TOKEN_EXCHANGE,
    OAuth2ClientProperties,
    Registration,
    load_client_properties,
)
from tokensmith.client.transaction_token import (
    TXN_TOKEN_HEADER,
    TXN_TOKEN_TYPE,
    TransactionTokenAuth,
    TransactionTokenMinter,
    txn_token_headers,
)

__all__ = [
    "ACCESS_TOKEN_TYPE",
    "CLIENT_CREDENTIALS",
    "JWT_TOKEN_TYPE",
    "TOKEN_EXCHANGE",
    "TXN_TOKEN_HEADER",
    "TXN_TOKEN_TYPE",
    "AuthorizationServerUnavailable",
    "ClientCredentialsAuth",
    "DPoPKey",
    "DiscoveryError",
    "IssuedToken",
    "MetadataCache",
    "OAuth2ClientProperties",
    "Registration",
    "RegistrationError",
    "TokenClientError",
    "TokenExchangeAuth",
    "TokenExchanger",
    "TokenRequestError",
    "TransactionTokenAuth",
    "TransactionTokenMinter",
    "basic_credentials",
    "client_assertion",
    "discover",
    "load_client_properties",
    "metadata_urls",
    "txn_token_headers",
]
