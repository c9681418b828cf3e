"""The one storage interface of the authorization server.

One SQLAlchemy implementation (``tokensmith.store.sql``) runs it on SQLite and PostgreSQL. Operations that
must be single-use across replicas (``consume_authorization_code``, ``use_refresh_token``) are atomic in the database.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from datetime import datetime
from typing import Generic, Protocol, TypeVar

from tokensmith.store.records import (
    AuditEvent,
    AuthorizationCodeRecord,
    IssuedTokenRecord,
    RefreshTokenRecord,
    SessionRecord,
    SigningKeyRecord,
)

T = TypeVar("T")


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

    # signing keys
    async def list_signing_keys(self) -> Sequence[SigningKeyRecord]: ...

    async def add_signing_key(self, key: SigningKeyRecord) -> None: ...

    async def retire_signing_key(self, kid: str, retired_at: datetime) -> None: ...

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
    async def record_issued_token(self, token: IssuedTokenRecord) -> None: ...

    async def get_issued_token(self, jti: str) -> IssuedTokenRecord | None: ...

    async def is_token_revoked(self, jti: str) -> bool:
        """A primary-key lookup; a jti that was never recorded is not revoked."""

    async def revoke_token_lineage(self, jti: str, now: datetime) -> Sequence[str]:
        """Revoke the token and, transitively, every token exchanged from it (as subject or actor token);
        return the jtis this call revoked (already revoked ones are left as they were)."""

    async def revoke_grant(self, grant_id: str, now: datetime) -> None:
        """Revoke every token and refresh token issued under one authorization grant (and their lineage)."""

    # browser sessions
    async def save_session(self, session: SessionRecord) -> None: ...

    async def get_session(self, session_hash: str, now: datetime) -> SessionRecord | None: ...

    async def delete_session(self, session_hash: str) -> None: ...

    # audit
    async def add_audit_event(self, event: AuditEvent) -> None: ...

    async def list_audit_events(self, limit: int = 100) -> Sequence[AuditEvent]:
        """The latest ``limit`` events, newest first."""

    # housekeeping
    async def purge_expired(self, now: datetime) -> int:
        """Delete expired codes, refresh tokens, issued tokens and sessions; return how many were deleted."""
