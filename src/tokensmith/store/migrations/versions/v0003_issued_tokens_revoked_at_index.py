"""Index issued tokens by revocation time, for the revocation cache's incremental poll.

Each server process keeps the revoked, unexpired jtis in memory and asks the database every second or so for the
ones revoked since its last look (``Store.list_revoked_tokens``); the index keeps that a short range scan however
many tokens the table holds. It is partial (revoked tokens only): small, and never chosen by the planner for
``revoked_at IS NULL``, which would turn a primary-key lookup of a few jtis into a scan of every live token.

Revision ID: 0003
Revises: 0002
Create Date: 2026-11-26
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision: str = "0003"
down_revision: str | None = "0002"
branch_labels: str | None = None
depends_on: str | None = None


def upgrade() -> None:
    revoked = sa.column("revoked_at").is_not(None)
    op.create_index(
        "ix_issued_tokens_revoked_at",
        "issued_tokens",
        ["revoked_at"],
        sqlite_where=revoked,
        postgresql_where=revoked,
    )


def downgrade() -> None:
    op.drop_index("ix_issued_tokens_revoked_at", table_name="issued_tokens")
