"""The `claims` request parameter (OpenID Connect Core 5.5) kept with each authorization code.

Revision ID: 0008
Revises: 0007
Create Date: 2026-12-06
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision: str = "0008"
down_revision: str | None = "0007"
branch_labels: str | None = None
depends_on: str | None = None


def upgrade() -> None:
    # Codes issued before the upgrade asked for no claims by name.
    op.add_column(
        "authorization_codes",
        sa.Column("claims_request", sa.JSON(none_as_null=True), nullable=False, server_default=sa.text("'{}'")),
    )


def downgrade() -> None:
    with op.batch_alter_table("authorization_codes") as batch:
        batch.drop_column("claims_request")
