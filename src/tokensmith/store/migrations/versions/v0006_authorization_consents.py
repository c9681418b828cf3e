"""Remembered consent: the scopes each user has allowed each client that asks for consent.

Revision ID: 0006
Revises: 0005
Create Date: 2026-11-26
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision: str = "0006"
down_revision: str | None = "0005"
branch_labels: str | None = None
depends_on: str | None = None

# Frozen copies of the column types of this revision (tables.py may move on; this file must not).
UTC_TIME = sa.DateTime(timezone=True)
NAME = sa.String(255)


def upgrade() -> None:
    op.create_table(
        "authorization_consents",
        sa.Column("client_id", NAME, nullable=False),
        sa.Column("subject", NAME, nullable=False),
        sa.Column("scopes", sa.JSON(none_as_null=True), nullable=False),
        sa.Column("granted_at", UTC_TIME, nullable=False),
        sa.PrimaryKeyConstraint("client_id", "subject", name="pk_authorization_consents"),
    )


def downgrade() -> None:
    op.drop_table("authorization_consents")
