"""Refresh-token lineage (refresh tokens issued by a token exchange) and private_key_jwt assertion jtis.

Revision ID: 0002
Revises: 0001
Create Date: 2026-11-26
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision: str = "0002"
down_revision: str | None = "0001"
branch_labels: str | None = None
depends_on: str | None = None

# Frozen copies of the column types of this revision (tables.py may move on; this file must not).
UTC_TIME = sa.DateTime(timezone=True)
NAME = sa.String(255)
ID = sa.String(64)


def upgrade() -> None:
    # Nullable columns: added in place on both dialects, existing rows need no value.
    op.add_column("refresh_tokens", sa.Column("parent_jti", ID, nullable=True))
    op.add_column("refresh_tokens", sa.Column("actor_jti", ID, nullable=True))
    op.create_index("ix_refresh_tokens_parent_jti", "refresh_tokens", ["parent_jti"])
    op.create_index("ix_refresh_tokens_actor_jti", "refresh_tokens", ["actor_jti"])
    op.create_table(
        "client_assertions",
        sa.Column("client_id", NAME, nullable=False),
        sa.Column("jti", NAME, nullable=False),
        sa.Column("expires_at", UTC_TIME, nullable=False),
        sa.PrimaryKeyConstraint("client_id", "jti", name="pk_client_assertions"),
    )
    op.create_index("ix_client_assertions_expires_at", "client_assertions", ["expires_at"])


def downgrade() -> None:
    op.drop_table("client_assertions")
    op.drop_index("ix_refresh_tokens_actor_jti", table_name="refresh_tokens")
    op.drop_index("ix_refresh_tokens_parent_jti", table_name="refresh_tokens")
    # Batch mode: SQLite drops columns by copying the table.
    with op.batch_alter_table("refresh_tokens") as batch:
        batch.drop_column("actor_jti")
        batch.drop_column("parent_jti")
