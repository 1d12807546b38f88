"""The schema of release 0.2.0, as its ``create_all`` made it: fits, their input rows and cached plots.

Revision ID: 0001
Revises:
Create Date: 2026-05-20
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "0001"
down_revision = None
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.create_table(
        "fits",
        sa.Column("id", sa.String(32), primary_key=True),
        sa.Column("name", sa.String(200), nullable=True),
        sa.Column("created_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("n_rows", sa.Integer(), nullable=False),
        sa.Column("n_groups", sa.Integer(), nullable=False),
        sa.Column("input_hash", sa.String(128), nullable=False),
        sa.Column("result_json", sa.Text(), nullable=False),
    )
    op.create_index("ix_fits_created_at", "fits", ["created_at"])
    op.create_table(
        "fit_inputs",
        sa.Column("fit_id", sa.String(32), sa.ForeignKey("fits.id", ondelete="CASCADE"), primary_key=True),
        sa.Column("format", sa.String(16), nullable=False),
        sa.Column("data", sa.LargeBinary(), nullable=False),
    )
    op.create_table(
        "fit_plots",
        sa.Column("fit_id", sa.String(32), sa.ForeignKey("fits.id", ondelete="CASCADE"), primary_key=True),
        sa.Column("name", sa.String(64), primary_key=True),
        sa.Column("png", sa.LargeBinary(), nullable=False),
    )


def downgrade() -> None:
    op.drop_table("fit_plots")
    op.drop_table("fit_inputs")
    op.drop_index("ix_fits_created_at", table_name="fits")
    op.drop_table("fits")
