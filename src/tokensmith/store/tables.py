"""The database schema as SQLAlchemy Core tables (the migrations under ``migrations/`` create exactly this).

Column names equal the field names of the records in :mod:`tokensmith.store.records`, so a row maps onto a
record without a translation table. Times are stored in UTC on both dialects (see :class:`UTCDateTime`).
"""

from __future__ import annotations

from datetime import UTC, datetime
from typing import Any

from sqlalchemy import (
    JSON,
    BigInteger,
    Column,
    DateTime,
    Dialect,
    Index,
    Integer,
    MetaData,
    String,
    Table,
    Text,
)
from sqlalchemy.types import TypeDecorator

# Stable constraint names, so later migrations (batch mode on SQLite) can refer to them.
metadata = MetaData(
    naming_convention={
        "ix": "ix_%(table_name)s_%(column_0_name)s",
        "uq": "uq_%(table_name)s_%(column_0_name)s",
        "pk": "pk_%(table_name)s",
    }
)


def aware_utc(value: datetime) -> datetime:
    """``value`` in UTC; a naive datetime is refused rather than guessed at (ValueError)."""
    if value.tzinfo is None:
        raise ValueError(f"naive datetime {value!r}: the store only accepts timezone-aware datetimes")
    return value if value.tzinfo is UTC else value.astimezone(UTC)


class UTCDateTime(TypeDecorator[datetime]):
    """A timezone-aware UTC datetime on every dialect.

    PostgreSQL keeps ``timestamptz``. SQLite has no time zones: the value is stored as naive UTC text in one fixed
    format, so comparisons such as ``expires_at < :now`` stay correct there too. Naive datetimes are refused
    rather than guessed at.
    """

    impl = DateTime(timezone=True)
    cache_ok = True

    def process_bind_param(self, value: datetime | None, dialect: Dialect) -> datetime | None:
        if value is None:
            return None
        value = aware_utc(value)
        return value.replace(tzinfo=None) if dialect.name == "sqlite" else value

    def process_result_value(self, value: datetime | None, dialect: Dialect) -> datetime | None:
        if value is None:
            return None
        return value.replace(tzinfo=UTC) if value.tzinfo is None else value.astimezone(UTC)


# Lookups are by SHA-256 hex digest of the secret.
Digest = String(64)
# Client ids, subjects and the like: bounded so PostgreSQL indexes stay small, generous for real-world ids.
Name = String(255)
AuditId = BigInteger().with_variant(Integer(), "sqlite")  # SQLite autoincrements only INTEGER PRIMARY KEY


def _json() -> JSON:
    return JSON(none_as_null=True)


# A row holds either the key sealed (public_jwk, encrypted_private_jwk, encryption_key_id) or, written before keys
# were encrypted at rest, `private_jwk` in clear, which the server seals in place at start.
signing_keys = Table(
    "signing_keys",
    metadata,
    Column("kid", String(64), primary_key=True),
    Column("alg", String(16), nullable=False),
    Column("private_jwk", _json(), nullable=True),
    Column("created_at", UTCDateTime(), nullable=False),
    Column("status", String(16), nullable=False),
    Column("retired_at", UTCDateTime(), nullable=True),
    Column("public_jwk", _json(), nullable=True),
    Column("encrypted_private_jwk", Text, nullable=True),
    Column("encryption_key_id", String(32), nullable=True),
)
# One active key per algorithm, decided by the database whatever the number of processes starting or rotating at once.
_is_active = signing_keys.c.status == "active"
Index(
    "ix_signing_keys_one_active_per_alg",
    signing_keys.c.alg,
    unique=True,
    sqlite_where=_is_active,
    postgresql_where=_is_active,
)

authorization_codes = Table(
    "authorization_codes",
    metadata,
    Column("code_hash", Digest, primary_key=True),
    Column("grant_id", String(64), nullable=False, index=True),
    Column("client_id", Name, nullable=False),
    Column("subject", Name, nullable=False),
    Column("redirect_uri", Text, nullable=False),
    Column("scope", _json(), nullable=False),
    Column("code_challenge", String(128), nullable=True),
    Column("code_challenge_method", String(16), nullable=True),
    Column("nonce", Text, nullable=True),
    Column("auth_time", UTCDateTime(), nullable=False),
    Column("expires_at", UTCDateTime(), nullable=False, index=True),
    Column("resource", _json(), nullable=False),
    Column("consumed_at", UTCDateTime(), nullable=True),
    Column("claims_request", _json(), nullable=False),
    Column("dpop_jkt", String(64), nullable=True),
)

refresh_tokens = Table(
    "refresh_tokens",
    metadata,
    Column("token_hash", Digest, primary_key=True),
    Column("family_id", String(64), nullable=False, index=True),
    Column("grant_id", String(64), nullable=False, index=True),
    Column("client_id", Name, nullable=False),
    Column("subject", Name, nullable=False),
    Column("scope", _json(), nullable=False),
    Column("issued_at", UTCDateTime(), nullable=False),
    Column("expires_at", UTCDateTime(), nullable=False, index=True),
    Column("auth_time", UTCDateTime(), nullable=True),
    Column("used_at", UTCDateTime(), nullable=True),
    Column("revoked_at", UTCDateTime(), nullable=True),
    Column("claims", _json(), nullable=False),
    # Lineage of refresh tokens issued by a token exchange (revocation walks it like issued_tokens'); indexed
    # where set, below.
    Column("parent_jti", String(64), nullable=True),
    Column("actor_jti", String(64), nullable=True),
    Column("dpop_jkt", String(64), nullable=True),
)

issued_tokens = Table(
    "issued_tokens",
    metadata,
    Column("jti", String(64), primary_key=True),
    Column("kind", String(32), nullable=False),
    Column("client_id", Name, nullable=False),
    Column("subject", Name, nullable=False),
    Column("issued_at", UTCDateTime(), nullable=False),
    Column("expires_at", UTCDateTime(), nullable=False, index=True),
    Column("grant_id", String(64), nullable=True),
    # Lineage edges: indexed (below) because revocation walks them from parent to children.
    Column("parent_jti", String(64), nullable=True),
    Column("actor_jti", String(64), nullable=True),
    Column("revoked_at", UTCDateTime(), nullable=True),
)


def _index_where_set(column: Column[Any]) -> Index:
    """An index of the rows where ``column`` is set. The lineage and grant columns are NULL for most rows (client
    credentials, plain exchanges, refresh tokens of a login); every lookup asks for a value (``=``, ``IN``), which
    both planners know excludes NULL, so leaving the NULLs out costs no query and saves an index entry per insert."""
    is_set = column.is_not(None)
    return Index(f"ix_{column.table.name}_{column.name}", column, sqlite_where=is_set, postgresql_where=is_set)


for _column in (
    issued_tokens.c.grant_id,
    issued_tokens.c.parent_jti,
    issued_tokens.c.actor_jti,
    refresh_tokens.c.parent_jti,
    refresh_tokens.c.actor_jti,
):
    _index_where_set(_column)
del _column

# For the revocation cache's incremental poll (tokens revoked since its last look). Partial: only revoked tokens
# are in it, so it stays small, and the planner can never use it for `revoked_at IS NULL` (every live token),
# which SQLite, without statistics, would otherwise prefer to a primary-key lookup of a few jtis.
_index_where_set(issued_tokens.c.revoked_at)

# The jti of each private_key_jwt client assertion until it expires: the primary key makes single use atomic.
client_assertions = Table(
    "client_assertions",
    metadata,
    Column("client_id", Name, primary_key=True),
    Column("jti", Name, primary_key=True),
    Column("expires_at", UTCDateTime(), nullable=False, index=True),
)

# DPoP proofs seen (RFC 9449 11.1), shared by every process and replica: the primary key refuses a replay.
dpop_proofs = Table(
    "dpop_proofs",
    metadata,
    Column("jti_hash", Digest, primary_key=True),
    Column("expires_at", UTCDateTime(), nullable=False, index=True),
)

# Failed-login throttling, shared by every process and replica (server/core/rate_limit.py): attempts per counter and
# fixed window. The counter is a keyed HMAC-SHA256 digest of what is counted (a username, a username from an
# address, an address), never the text itself: people type passwords into the username field. Rows are purged two
# windows after theirs started.
login_attempts = Table(
    "login_attempts",
    metadata,
    Column("counter_hash", Digest, primary_key=True),
    Column("window_start", UTCDateTime(), primary_key=True),
    Column("attempts", Integer, nullable=False),
    Column("expires_at", UTCDateTime(), nullable=False, index=True),
)

# The scopes a user has allowed a client that asks for consent (Spring Authorization Server's
# OAuth2AuthorizationConsent): the consent page is shown again only for scopes not yet allowed, or on prompt=consent.
authorization_consents = Table(
    "authorization_consents",
    metadata,
    Column("client_id", Name, primary_key=True),
    Column("subject", Name, primary_key=True),
    Column("scopes", _json(), nullable=False),
    Column("granted_at", UTCDateTime(), nullable=False),
)

sessions = Table(
    "sessions",
    metadata,
    Column("session_hash", Digest, primary_key=True),
    Column("subject", Name, nullable=False),
    Column("auth_time", UTCDateTime(), nullable=False),
    Column("expires_at", UTCDateTime(), nullable=False, index=True),
    Column("csrf_secret", String(255), nullable=False),
)

audit_events = Table(
    "audit_events",
    metadata,
    Column("id", AuditId, primary_key=True, autoincrement=True),
    Column("occurred_at", UTCDateTime(), nullable=False),
    Column("event", String(64), nullable=False),
    Column("outcome", String(32), nullable=False),
    Column("client_id", Name, nullable=True),
    Column("subject", Name, nullable=True),
    Column("actor", Name, nullable=True),
    Column("audience", _json(), nullable=False),
    Column("scope", _json(), nullable=False),
    Column("reason", Text, nullable=True),
    Column("details", _json(), nullable=False),
)
