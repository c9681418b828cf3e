"""Plain records that cross the storage interface. Times are timezone-aware UTC datetimes.

Secrets (authorization codes, refresh tokens, session ids) are never stored as such: the store keeps a
SHA-256 hex digest (``*_hash``) and callers look records up by digest.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import datetime
from typing import Any


@dataclass(frozen=True, slots=True)
class SigningKeyRecord:
    kid: str
    alg: str  # "ES256" or "RS256"
    public_jwk: dict[str, Any]  # the public key as a JWK (RFC 7517) dict, in clear: the JWKS is built from it
    # The private JWK sealed with AES-256-GCM (server/key_encryption.py) under the key-encryption key whose id is
    # `encryption_key_id`.
    encrypted_private_jwk: str
    encryption_key_id: str
    created_at: datetime
    # "active": signs new tokens (one per algorithm); "retired": published in the JWKS for verification only.
    status: str = "active"
    retired_at: datetime | None = None


@dataclass(frozen=True, slots=True)
class PlaintextSigningKey:
    """A signing key stored before keys were encrypted at rest: the server encrypts it in place at start."""

    kid: str
    alg: str
    private_jwk: dict[str, Any]
    created_at: datetime


@dataclass(frozen=True, slots=True)
class AuthorizationCodeRecord:
    code_hash: str
    grant_id: str  # every token issued from this code carries this id, so a replay can revoke them all
    client_id: str
    subject: str
    redirect_uri: str
    scope: tuple[str, ...]
    code_challenge: str | None
    code_challenge_method: str | None
    nonce: str | None
    auth_time: datetime
    expires_at: datetime
    resource: tuple[str, ...] = ()
    consumed_at: datetime | None = None
    # The `claims` request parameter (OpenID Connect Core 5.5) of the authorization request, as checked.
    claims_request: dict[str, Any] = field(default_factory=dict)
    # `dpop_jkt` of the authorization request (RFC 9449 10): the token request's DPoP proof must be by this key.
    dpop_jkt: str | None = None


@dataclass(frozen=True, slots=True)
class RefreshTokenRecord:
    token_hash: str
    family_id: str  # one family per authorization grant; reuse of a rotated token revokes the family
    grant_id: str
    client_id: str
    subject: str
    scope: tuple[str, ...]
    issued_at: datetime
    expires_at: datetime
    auth_time: datetime | None = None
    used_at: datetime | None = None
    revoked_at: datetime | None = None
    claims: dict[str, Any] = field(default_factory=dict)  # extra context (e.g. resource, act) to re-issue with
    # Lineage of a refresh token issued by a token exchange: the subject (and actor) token it came from.
    # Revoking either of them, or anything they were exchanged from, revokes this refresh token too.
    parent_jti: str | None = None
    actor_jti: str | None = None
    # The thumbprint of the DPoP key the refresh token is bound to (RFC 9449 5, a public client's): refreshing
    # needs a proof by that key.
    dpop_jkt: str | None = None


@dataclass(frozen=True, slots=True)
class IssuedTokenRecord:
    """An access or ID token the server issued, kept for revocation, introspection and exchange lineage."""

    jti: str
    kind: str  # "access_token" | "id_token"
    client_id: str
    subject: str
    issued_at: datetime
    expires_at: datetime
    grant_id: str | None = None
    # Lineage: the jti of the subject token (and actor token) this one was exchanged from.
    parent_jti: str | None = None
    actor_jti: str | None = None
    revoked_at: datetime | None = None


@dataclass(frozen=True, slots=True)
class RevokedTokenRecord:
    """A revoked access or ID token, as the revocation cache needs it: which, since when, and until when it
    matters (after ``expires_at`` the token is refused for its expiry anyway)."""

    jti: str
    revoked_at: datetime
    expires_at: datetime


@dataclass(frozen=True, slots=True)
class DPoPProofRecord:
    """A DPoP proof's ``jti`` (RFC 9449 11.1), as the proof's replay key (``server/core/dpop.py``: its ``iat``, then
    a digest of its key and ``jti``), kept until ``expires_at`` (after which the proof is too old anyway) to refuse
    replays."""

    jti_hash: str
    expires_at: datetime


@dataclass(frozen=True, slots=True)
class ClientAssertionRecord:
    """The ``jti`` of a client authentication JWT (RFC 7523 3), kept until ``expires_at`` to refuse replays."""

    client_id: str
    jti: str
    expires_at: datetime


@dataclass(frozen=True, slots=True)
class SessionRecord:
    """A browser login session at the authorization server."""

    session_hash: str
    subject: str
    auth_time: datetime
    expires_at: datetime
    csrf_secret: str


@dataclass(frozen=True, slots=True)
class AuditEvent:
    occurred_at: datetime
    event: str  # e.g. "token_exchange"
    outcome: str  # "granted" | "refused"
    client_id: str | None = None
    subject: str | None = None
    actor: str | None = None
    audience: tuple[str, ...] = ()
    scope: tuple[str, ...] = ()
    reason: str | None = None
    details: dict[str, Any] = field(default_factory=dict)
    id: int | None = None


@dataclass(frozen=True, slots=True)
class LoginCounter:
    """One failed-login counter (a username's, a client address's) and how many attempts it allows (None: it
    counts, but never refuses)."""

    counter_hash: str  # keyed HMAC-SHA256 hex digest of what is counted, never the text itself
    limit: int | None


@dataclass(frozen=True, slots=True)
class LoginAttempt:
    """A login attempt to count, in fixed windows: the attempts of the current window plus those of the previous
    one, weighted by how much of it still lies within one window length of now, must stay within each limit."""

    counters: tuple[LoginCounter, ...]
    window_start: datetime
    previous_window_start: datetime
    previous_weight: float  # 0..1: the share of the previous window that still counts
    expires_at: datetime  # when this window's counts stop mattering


@dataclass(frozen=True, slots=True)
class AuthorizationConsentRecord:
    """The scopes ``subject`` has allowed ``client_id`` (the consent page asks again only for others)."""

    client_id: str
    subject: str
    scopes: frozenset[str]
    granted_at: datetime
