"""Index the lineage and grant columns of issued tokens (and the lineage of refresh tokens) only where set.

``issued_tokens.grant_id``, ``parent_jti`` and ``actor_jti`` are NULL for most tokens (client credentials, an
exchange without an actor), and ``refresh_tokens.parent_jti`` and ``actor_jti`` for every refresh token but those a
token exchange issued; yet every insert added an entry to each of their indexes, on the token endpoint's hot path.
As partial indexes (``WHERE column IS NOT NULL``) they hold only the rows that have a value, which are all the
lookups ever ask for: revocation walks the lineage by equality (``parent_jti = :jti``) and ``IN``, both false for
NULL, so both planners still use them (a test holds SQLite's plan to it).

Revision ID: 0004
Revises: 0003
Create Date: 2026-11-27
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision: str = "0004"
down_revision: str | None = "0003"
branch_labels: str | None = None
depends_on: str | None = None

COLUMNS = (
    ("issued_tokens", "grant_id"),
    ("issued_tokens", "parent_jti"),
    ("issued_tokens", "actor_jti"),
    ("refresh_tokens", "parent_jti"),
    ("refresh_tokens", "actor_jti"),
)


def upgrade() -> None:
    for table, column in COLUMNS:
        name = f"ix_{table}_{column}"
        is_set = sa.column(column).is_not(None)
        op.drop_index(name, table_name=table)
        op.create_index(name, table, [column], sqlite_where=is_set, postgresql_where=is_set)


def downgrade() -> None:
    for table, column in COLUMNS:
        name = f"ix_{table}_{column}"
        op.drop_index(name, table_name=table)
        op.create_index(name, table, [column])
