"""Polling and counting: where each polled clinic's cursor stands, and how many requests
Rapport made to each clinic's platform per month.

Two new tables; no existing table changes.

Revision ID: 0007
Revises: 0006
Create Date: 2026-12-07
"""

import sqlalchemy as sa
from alembic import op

revision = "0007"
down_revision = "0006"
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.create_table(
        "poll_states",
        sa.Column("clinic_id", sa.Integer(), nullable=False),
        sa.Column("since", sa.DateTime(), nullable=False),
        sa.Column("cursor", sa.Text(), nullable=True),
        sa.Column("next_poll_at", sa.DateTime(), nullable=True),
        sa.Column("last_polled_at", sa.DateTime(), nullable=True),
        sa.Column("claimed_at", sa.DateTime(), nullable=True),
        sa.Column("failures", sa.Integer(), nullable=False, server_default="0"),
        sa.Column("last_problem", sa.Text(), nullable=True),
        sa.Column("last_problem_at", sa.DateTime(), nullable=True),
        sa.ForeignKeyConstraint(["clinic_id"], ["clinics.id"], ondelete="CASCADE"),
        sa.PrimaryKeyConstraint("clinic_id"),
    )
    op.create_index("ix_poll_states_next_poll_at", "poll_states", ["next_poll_at"])
    op.create_table(
        "api_calls",
        sa.Column("clinic_id", sa.Integer(), nullable=False),
        sa.Column("month", sa.String(length=7), nullable=False),
        sa.Column("calls", sa.Integer(), nullable=False),
        sa.ForeignKeyConstraint(["clinic_id"], ["clinics.id"], ondelete="CASCADE"),
        sa.PrimaryKeyConstraint("clinic_id", "month"),
    )


def downgrade() -> None:
    op.drop_table("api_calls")
    op.drop_index("ix_poll_states_next_poll_at", table_name="poll_states")
    op.drop_table("poll_states")
