"""Assembling the protocol core of one server: every per-server object is built here, once, and handed to the
:class:`ServerContext`; the grants the server offers are registered here and nowhere else.

The app factory (``server/app.py``) calls :func:`build_context` when the server starts and ``ctx.aclose()`` when it
stops; protocol tests build their contexts the same way.
"""

from __future__ import annotations

import httpx

from tokensmith import jose
from tokensmith.config.server import ServerConfig
from tokensmith.server.clock import Clock
from tokensmith.server.core.audit import AuditLog
from tokensmith.server.core.client_assertion import ClientAssertionVerifier
from tokensmith.server.core.context import GrantHandler, ServerContext, grant_registry
from tokensmith.server.core.dpop import NONCE_SECRET_PURPOSE, DPoPVerifier
from tokensmith.server.core.grants.authorization_code import AuthorizationCodeGrant
from tokensmith.server.core.grants.client_credentials import ClientCredentialsGrant
from tokensmith.server.core.grants.id_jag_bearer import IdJagProfile
from tokensmith.server.core.grants.jwt_bearer import JwtBearerGrant
from tokensmith.server.core.grants.refresh_token import RefreshTokenGrant
from tokensmith.server.core.grants.token_exchange import TokenExchangeGrant
from tokensmith.server.core.revocation_cache import RevocationCache
from tokensmith.server.core.subject_tokens import SubjectTokenValidator
from tokensmith.server.core.tokens import TokenIssuer
from tokensmith.server.core.transaction_tokens import TransactionTokenService
from tokensmith.server.core.trusted_issuers import TrustedIssuers
from tokensmith.server.keys import KeyManager
from tokensmith.store.base import Store


def build_context(
    config: ServerConfig, store: Store, keys: KeyManager, clock: Clock, *, http: httpx.AsyncClient | None = None
) -> ServerContext:
    """The server's context over an opened store and loaded keys. ``http`` fetches the key sets of trusted issuers
    and of ``private_key_jwt`` clients; by default each feature opens (and closes) its own client."""
    audit = AuditLog(store)
    # The trusted issuers' key sets, shared by the token exchange (subject and actor tokens) and the JWT bearer grant.
    trusted = TrustedIssuers(config.trusted_issuers, clock=clock, http=http)
    validator = SubjectTokenValidator(
        issuer=config.issuer,
        keys=keys,
        store=store,
        trusted=trusted,
        clock=clock,
        clock_skew=config.tokens.clock_skew,
        revocations=RevocationCache(store, refresh_interval=config.tokens.revocation_refresh_interval, clock=clock),
    )
    exchange = TokenExchangeGrant(
        validator=validator,
        audit=audit,
        transaction_tokens=TransactionTokenService(config.transaction_tokens, validator),
    )
    # The grants this server offers at its token endpoint.
    grants: tuple[GrantHandler, ...] = (
        AuthorizationCodeGrant(),
        RefreshTokenGrant(),
        ClientCredentialsGrant(),
        exchange,
        # RFC 7523 2.1; assertion profiles for other header `typ` values are registered with `profiles=`.
        JwtBearerGrant(trusted, audit, profiles=[IdJagProfile()]),
    )
    # Server nonces: a configured secret, else one derived from the key-encryption key, so replicas agree.
    nonce_secret = (
        config.dpop.nonce_secret.get_secret_value().encode()
        if config.dpop.nonce_secret is not None
        else keys.encryption_key.derive_secret(NONCE_SECRET_PURPOSE)
    )
    return ServerContext(
        config=config,
        store=store,
        keys=keys,
        tokens=TokenIssuer(config, keys, store, clock),
        clock=clock,
        client_assertions=ClientAssertionVerifier(
            issuer=config.issuer, store=store, clock=clock, clock_skew=config.tokens.clock_skew, http=http
        ),
        grants=grant_registry(grants),
        dpop=DPoPVerifier(
            config,
            store,
            clock,
            nonces=jose.DPoPNonceSource(
                nonce_secret, config.dpop.nonce_lifetime.total_seconds(), lambda: clock().timestamp()
            ),
        ),
    )
