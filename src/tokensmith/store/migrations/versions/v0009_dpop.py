"""DPoP (RFC 9449): the proofs seen, shared by every process and replica to refuse replays, and the key a refresh
token or an authorization code is bound to.

Revision ID: 0009
Revises: 0008
Create Date: 2026-12-06
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision: str = "0009"
down_revision: str | None = "0008"
branch_labels: str | None = None
depends_on: str | None = None

# Frozen copies of the column types of this revision (tables.py may move on; this file must not).
UTC_TIME = sa.DateTime(timezone=True)
DIGEST = sa.String(64)
THUMBPRINT = sa.String(64)


def upgrade() -> None:
    op.create_table(
        "dpop_proofs",
        sa.Column("jti_hash", DIGEST, nullable=False),
        sa.Column("expires_at", UTC_TIME, nullable=False),
        sa.PrimaryKeyConstraint("jti_hash", name="pk_dpop_proofs"),
    )
    op.create_index("ix_dpop_proofs_expires_at", "dpop_proofs", ["expires_at"])
    # Tokens issued before the upgrade are bound to no key.
    op.add_column("refresh_tokens", sa.Column("dpop_jkt", THUMBPRINT, nullable=True))
    op.add_column("authorization_codes", sa.Column("dpop_jkt", THUMBPRINT, nullable=True))


def downgrade() -> None:
    with op.batch_alter_table("authorization_codes") as batch:
        batch.drop_column("dpop_jkt")
    with op.batch_alter_table("refresh_tokens") as batch:
        batch.drop_column("dpop_jkt")
    op.drop_table("dpop_proofs")
