"""Initial schema: signing keys, authorization codes, refresh tokens, issued tokens, sessions, audit events.

Revision ID: 0001
Revises:
Create Date: 2026-11-26
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision: str = "0001"
down_revision: str | None = None
branch_labels: str | None = None
depends_on: str | None = None

# Frozen copies of the column types of this revision (tables.py may move on; this file must not).
UTC_TIME = sa.DateTime(timezone=True)
JSON = sa.JSON(none_as_null=True)
DIGEST = sa.String(64)
NAME = sa.String(255)
ID = sa.String(64)


def upgrade() -> None:
    op.create_table(
        "signing_keys",
        sa.Column("kid", ID, nullable=False),
        sa.Column("alg", sa.String(16), nullable=False),
        sa.Column("private_jwk", JSON, nullable=False),
        sa.Column("created_at", UTC_TIME, nullable=False),
        sa.Column("status", sa.String(16), nullable=False),
        sa.Column("retired_at", UTC_TIME, nullable=True),
        sa.PrimaryKeyConstraint("kid", name="pk_signing_keys"),
    )
    op.create_table(
        "authorization_codes",
        sa.Column("code_hash", DIGEST, nullable=False),
        sa.Column("grant_id", ID, nullable=False),
        sa.Column("client_id", NAME, nullable=False),
        sa.Column("subject", NAME, nullable=False),
        sa.Column("redirect_uri", sa.Text(), nullable=False),
        sa.Column("scope", JSON, nullable=False),
        sa.Column("code_challenge", sa.String(128), nullable=True),
        sa.Column("code_challenge_method", sa.String(16), nullable=True),
        sa.Column("nonce", sa.Text(), nullable=True),
        sa.Column("auth_time", UTC_TIME, nullable=False),
        sa.Column("expires_at", UTC_TIME, nullable=False),
        sa.Column("resource", JSON, nullable=False),
        sa.Column("consumed_at", UTC_TIME, nullable=True),
        sa.PrimaryKeyConstraint("code_hash", name="pk_authorization_codes"),
    )
    op.create_index("ix_authorization_codes_grant_id", "authorization_codes", ["grant_id"])
    op.create_index("ix_authorization_codes_expires_at", "authorization_codes", ["expires_at"])
    op.create_table(
        "refresh_tokens",
        sa.Column("token_hash", DIGEST, nullable=False),
        sa.Column("family_id", ID, nullable=False),
        sa.Column("grant_id", ID, nullable=False),
        sa.Column("client_id", NAME, nullable=False),
        sa.Column("subject", NAME, nullable=False),
        sa.Column("scope", JSON, nullable=False),
        sa.Column("issued_at", UTC_TIME, nullable=False),
        sa.Column("expires_at", UTC_TIME, nullable=False),
        sa.Column("auth_time", UTC_TIME, nullable=True),
        sa.Column("used_at", UTC_TIME, nullable=True),
        sa.Column("revoked_at", UTC_TIME, nullable=True),
        sa.Column("claims", JSON, nullable=False),
        sa.PrimaryKeyConstraint("token_hash", name="pk_refresh_tokens"),
    )
    op.create_index("ix_refresh_tokens_family_id", "refresh_tokens", ["family_id"])
    op.create_index("ix_refresh_tokens_grant_id", "refresh_tokens", ["grant_id"])
    op.create_index("ix_refresh_tokens_expires_at", "refresh_tokens", ["expires_at"])
    op.create_table(
        "issued_tokens",
        sa.Column("jti", ID, nullable=False),
        sa.Column("kind", sa.String(32), nullable=False),
        sa.Column("client_id", NAME, nullable=False),
        sa.Column("subject", NAME, nullable=False),
        sa.Column("issued_at", UTC_TIME, nullable=False),
        sa.Column("expires_at", UTC_TIME, nullable=False),
        sa.Column("grant_id", ID, nullable=True),
        sa.Column("parent_jti", ID, nullable=True),
        sa.Column("actor_jti", ID, nullable=True),
        sa.Column("revoked_at", UTC_TIME, nullable=True),
        sa.PrimaryKeyConstraint("jti", name="pk_issued_tokens"),
    )
    op.create_index("ix_issued_tokens_expires_at", "issued_tokens", ["expires_at"])
    op.create_index("ix_issued_tokens_grant_id", "issued_tokens", ["grant_id"])
    op.create_index("ix_issued_tokens_parent_jti", "issued_tokens", ["parent_jti"])
    op.create_index("ix_issued_tokens_actor_jti", "issued_tokens", ["actor_jti"])
    op.create_table(
        "sessions",
        sa.Column("session_hash", DIGEST, nullable=False),
        sa.Column("subject", NAME, nullable=False),
        sa.Column("auth_time", UTC_TIME, nullable=False),
        sa.Column("expires_at", UTC_TIME, nullable=False),
        sa.Column("csrf_secret", sa.String(255), nullable=False),
        sa.PrimaryKeyConstraint("session_hash", name="pk_sessions"),
    )
    op.create_index("ix_sessions_expires_at", "sessions", ["expires_at"])
    op.create_table(
        "audit_events",
        sa.Column("id", sa.BigInteger().with_variant(sa.Integer(), "sqlite"), autoincrement=True, nullable=False),
        sa.Column("occurred_at", UTC_TIME, nullable=False),
        sa.Column("event", sa.String(64), nullable=False),
        sa.Column("outcome", sa.String(32), nullable=False),
        sa.Column("client_id", NAME, nullable=True),
        sa.Column("subject", NAME, nullable=True),
        sa.Column("actor", NAME, nullable=True),
        sa.Column("audience", JSON, nullable=False),
        sa.Column("scope", JSON, nullable=False),
        sa.Column("reason", sa.Text(), nullable=True),
        sa.Column("details", JSON, nullable=False),
        sa.PrimaryKeyConstraint("id", name="pk_audit_events"),
    )


def downgrade() -> None:
    op.drop_table("audit_events")
    op.drop_table("sessions")
    op.drop_table("issued_tokens")
    op.drop_table("refresh_tokens")
    op.drop_table("authorization_codes")
    op.drop_table("signing_keys")
