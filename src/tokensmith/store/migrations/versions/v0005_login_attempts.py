"""Failed-login counters in the database, so that every process and replica counts against one limit.

Until this revision each server process counted failed logins in its own memory: behind a load balancer the
effective limit was the configured one times the number of processes.

Revision ID: 0005
Revises: 0004
Create Date: 2026-11-26
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision: str = "0005"
down_revision: str | None = "0004"
branch_labels: str | None = None
depends_on: str | None = None

# Frozen copies of the column types of this revision (tables.py may move on; this file must not).
UTC_TIME = sa.DateTime(timezone=True)
DIGEST = sa.String(64)


def upgrade() -> None:
    op.create_table(
        "login_attempts",
        sa.Column("counter_hash", DIGEST, nullable=False),
        sa.Column("window_start", UTC_TIME, nullable=False),
        sa.Column("attempts", sa.Integer(), nullable=False),
        sa.Column("expires_at", UTC_TIME, nullable=False),
        sa.PrimaryKeyConstraint("counter_hash", "window_start", name="pk_login_attempts"),
    )
    op.create_index("ix_login_attempts_expires_at", "login_attempts", ["expires_at"])


def downgrade() -> None:
    op.drop_table("login_attempts")
