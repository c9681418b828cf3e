"""The one storage interface of the authorization server.

One SQLAlchemy implementation (``tokensmith.store.sql``) runs it on SQLite and PostgreSQL. Operations that
must be single-use across replicas (``consume_authorization_code``, ``use_refresh_token``) are atomic in the database.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from datetime import datetime
from typing import Generic, Literal, Protocol, TypeVar

from tokensmith.store.records import (
    AuditEvent,
    AuthorizationCodeRecord,
    AuthorizationConsentRecord,
    ClientAssertionRecord,
    DPoPProofRecord,
    IssuedTokenRecord,
    LoginAttempt,
    PlaintextSigningKey,
    RefreshTokenRecord,
    RevokedTokenRecord,
    SessionRecord,
    SigningKeyRecord,
)

T = TypeVar("T")

# What a commit survives (``database-durability``, docs/deployment.md): "full", a power loss; "normal", a crash of
# the process only.
Durability = Literal["full", "normal"]


@dataclass(frozen=True, slots=True)
class Consumed(Generic[T]):
    """The outcome of an atomic single-use operation.

    ``record`` is None when nothing matched the digest. ``first_use`` is False when the record had already
    been consumed (a replay): the caller then revokes what the first use issued.
    """

    record: T | None
    first_use: bool


class Store(Protocol):
    # lifecycle
    async def initialize(self) -> None:
        """Create or upgrade the schema (Alembic migrations) and get ready to serve."""

    async def close(self) -> None: ...

    # signing keys (at most one active per algorithm, held by the database)
    async def list_signing_keys(self) -> Sequence[SigningKeyRecord]:
        """The sealed keys, oldest first (keys still in clear are :meth:`list_plaintext_signing_keys`)."""

    async def list_plaintext_signing_keys(self) -> Sequence[PlaintextSigningKey]:
        """Keys written before keys were sealed at rest, for the server to seal."""

    async def add_signing_key(self, key: SigningKeyRecord) -> bool:
        """Add the key; False, adding nothing, when it is active and its algorithm already has an active key
        (another process added it: re-read)."""

    async def rotate_signing_key(self, retiring_kid: str, new_key: SigningKeyRecord, now: datetime) -> bool:
        """In one transaction, retire ``retiring_kid`` and add ``new_key`` (active); False, changing nothing, when
        ``retiring_kid`` is no longer active (another process rotated first: re-read)."""

    async def replace_signing_key_ciphertexts(
        self, keys: Sequence[SigningKeyRecord], previous_key_id: str | None
    ) -> bool:
        """In one transaction, write each key's public JWK, ciphertext and key-encryption key id over its row, which
        must still be sealed under ``previous_key_id`` (None: still in clear, which is then cleared). Commit only
        when every key matched and no row is left under ``previous_key_id``; else change nothing and return False."""

    async def delete_signing_key(self, kid: str) -> None: ...

    # authorization codes
    async def save_authorization_code(self, code: AuthorizationCodeRecord) -> None: ...

    async def consume_authorization_code(self, code_hash: str, now: datetime) -> Consumed[AuthorizationCodeRecord]: ...

    # refresh tokens
    async def save_refresh_token(self, token: RefreshTokenRecord) -> None: ...

    async def use_refresh_token(self, token_hash: str, now: datetime) -> Consumed[RefreshTokenRecord]:
        """Atomically mark the token used (rotation). A second use, or a use of a revoked token, reports
        ``first_use=False`` with the stored record."""

    async def revoke_refresh_token(self, token_hash: str, now: datetime) -> RefreshTokenRecord | None: ...

    async def get_refresh_token(self, token_hash: str) -> RefreshTokenRecord | None:
        """Read without using it (introspection, and checks made before the atomic ``use_refresh_token``)."""

    # issued access / ID tokens
    async def record_issued_token(self, token: IssuedTokenRecord) -> None:
        """Return once the row is committed (as durable as the store's durability says). A token whose ``parent_jti`` or ``actor_jti`` is already revoked is
        recorded as revoked (revoked at birth): the lineage stays whole even when the token exchange learned of
        the revocation late (``tokens.revocation-refresh-interval``)."""

    async def get_issued_token(self, jti: str) -> IssuedTokenRecord | None: ...

    async def is_token_revoked(self, jti: str) -> bool:
        """A primary-key lookup; a jti that was never recorded is not revoked."""

    async def revoke_token_lineage(self, jti: str, now: datetime) -> Sequence[str]:
        """Revoke the token and, transitively, every token exchanged from it (as subject or actor token),
        including refresh tokens a token exchange issued from them (``RefreshTokenRecord.parent_jti`` /
        ``actor_jti``); return the access/ID token jtis this call revoked (already revoked ones are left as
        they were)."""

    async def revoke_grant(self, grant_id: str, now: datetime) -> None:
        """Revoke every token and refresh token issued under one authorization grant (and their lineage)."""

    async def list_revoked_tokens(self, revoked_since: datetime, now: datetime) -> Sequence[RevokedTokenRecord]:
        """The access/ID tokens revoked at or after ``revoked_since`` that expire after ``now`` (the revocation
        cache's start-up load and incremental poll; an index keeps it cheap)."""

    @property
    def revocations_committed(self) -> int:
        """How many revocations (``revoke_token_lineage``, ``revoke_grant``) this store object has committed: a
        revocation cache in the same process polls again when it changes, so it sees its own revocations at once."""

    # client assertions (private_key_jwt, RFC 7523)
    async def use_client_assertion(self, assertion: ClientAssertionRecord) -> bool:
        """Atomically record an assertion's ``(client_id, jti)`` until it expires; False when already recorded
        (a replay, refused across replicas sharing the database)."""

    # DPoP proofs (RFC 9449 11.1)
    async def use_dpop_proof(self, proof: DPoPProofRecord) -> bool:
        """Atomically record a proof's ``jti_hash`` until it expires; False when already recorded (a replay,
        refused across replicas sharing the database)."""

    # remembered consent
    async def get_authorization_consent(self, client_id: str, subject: str) -> AuthorizationConsentRecord | None:
        """What ``subject`` has allowed ``client_id`` so far, or None."""

    async def grant_authorization_consent(
        self, client_id: str, subject: str, scopes: frozenset[str], now: datetime
    ) -> None:
        """Add ``scopes`` to what ``subject`` has allowed ``client_id`` (a record is created at the first grant)."""

    async def revoke_authorization_consent(self, client_id: str, subject: str) -> None:
        """Forget everything ``subject`` has allowed ``client_id``."""

    # browser sessions
    async def save_session(self, session: SessionRecord) -> None: ...

    async def get_session(self, session_hash: str, now: datetime) -> SessionRecord | None: ...

    async def delete_session(self, session_hash: str) -> None: ...

    # failed-login throttling
    async def admit_login_attempt(self, attempt: LoginAttempt) -> Mapping[str, float] | None:
        """Count the attempt under each of its counters, unless that would take any of them past its limit: then
        count nothing and return None. Otherwise return each counter's count by its hash, this attempt included (the
        previous window's attempts weighted as the attempt says). Atomic across processes and replicas: of attempts
        made at once, no more are admitted than the limits allow."""

    async def take_back_login_attempt(self, counter_hash: str, window_start: datetime) -> None:
        """Uncount one attempt counted in that window (it turned out to be a successful login)."""

    async def forget_login_attempts(self, counter_hashes: Sequence[str]) -> None:
        """Drop every count of the counters, in one statement (a successful login forgives the user's failures)."""

    # audit
    async def add_audit_event(self, event: AuditEvent) -> None:
        """Return once the event is committed."""

    async def list_audit_events(self, limit: int = 100) -> Sequence[AuditEvent]:
        """The latest ``limit`` events, newest first."""

    # housekeeping
    async def purge_expired(self, now: datetime, *, audit_events_before: datetime | None = None) -> int:
        """Delete expired codes, refresh tokens, issued tokens, sessions, client assertion and DPoP proof jtis and
        login attempt counts, and the audit events that occurred before ``audit_events_before`` (None keeps them
        all); return how many rows were deleted."""

    # operations

    async def ping(self) -> None:
        """Run the cheapest query there is; raise what the database driver raises when it cannot be reached."""
