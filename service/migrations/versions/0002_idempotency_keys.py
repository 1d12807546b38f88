"""Idempotency keys of ``POST /v1/fits`` (issue 17, item 5): the key a fit was created with.

Revision ID: 0002
Revises: 0001
Create Date: 2026-05-20
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "0002"
down_revision = "0001"
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.create_table(
        "idempotency_keys",
        sa.Column("key", sa.String(255), primary_key=True),
        sa.Column("fit_id", sa.String(32), sa.ForeignKey("fits.id", ondelete="CASCADE"), nullable=False),
        sa.Column("request_hash", sa.String(64), nullable=False),
        sa.Column("created_at", sa.DateTime(timezone=True), nullable=False),
    )
    op.create_index("ix_idempotency_keys_fit_id", "idempotency_keys", ["fit_id"])


def downgrade() -> None:
    op.drop_index("ix_idempotency_keys_fit_id", table_name="idempotency_keys")
    op.drop_table("idempotency_keys")
