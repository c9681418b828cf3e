"""Signing keys sealed at rest, and one active key per algorithm.

New columns hold the public JWK in clear and the private JWK sealed under the operator's key-encryption key
(server/key_encryption.py). SQL cannot seal: rows of earlier versions keep their clear ``private_jwk`` until the
server, which has the key-encryption key, seals them in place at its next start and clears that column.

A partial unique index allows one active key per algorithm, so that processes starting or rotating at once cannot
both add one. Of the active keys a database may already hold for one algorithm (replicas that started together),
the oldest is the one every replica signed with: the others are retired as of their creation.

Revision ID: 0007
Revises: 0006
Create Date: 2026-12-06
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision: str = "0007"
down_revision: str | None = "0006"
branch_labels: str | None = None
depends_on: str | None = None

# Frozen copies of the column types of this revision (tables.py may move on; this file must not).
JSON = sa.JSON(none_as_null=True)
INDEX = "ix_signing_keys_one_active_per_alg"


def upgrade() -> None:
    with op.batch_alter_table("signing_keys") as batch:
        batch.alter_column("private_jwk", existing_type=JSON, nullable=True)
        batch.add_column(sa.Column("public_jwk", JSON, nullable=True))
        batch.add_column(sa.Column("encrypted_private_jwk", sa.Text, nullable=True))
        batch.add_column(sa.Column("encryption_key_id", sa.String(32), nullable=True))
    op.execute(
        "UPDATE signing_keys SET status = 'retired', retired_at = created_at "
        "WHERE status = 'active' AND EXISTS (SELECT 1 FROM signing_keys AS older "
        "WHERE older.alg = signing_keys.alg AND older.status = 'active' AND (older.created_at < signing_keys.created_at "
        "OR (older.created_at = signing_keys.created_at AND older.kid < signing_keys.kid)))"
    )
    is_active = sa.column("status") == "active"
    op.create_index(INDEX, "signing_keys", ["alg"], unique=True, sqlite_where=is_active, postgresql_where=is_active)


def downgrade() -> None:
    # Earlier versions cannot open sealed keys: they go, and those versions generate new ones at start.
    op.drop_index(INDEX, table_name="signing_keys")
    op.execute("DELETE FROM signing_keys WHERE private_jwk IS NULL")
    with op.batch_alter_table("signing_keys") as batch:
        batch.drop_column("encryption_key_id")
        batch.drop_column("encrypted_private_jwk")
        batch.drop_column("public_jwk")
        batch.alter_column("private_jwk", existing_type=JSON, nullable=False)
