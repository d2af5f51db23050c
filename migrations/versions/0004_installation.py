"""This database's own name, told apart from others sharing a Redis or a receiver.

Revision ID: 0004
Revises: 0003
Create Date: 2026-11-26
"""

import secrets
from datetime import datetime, timezone

import sqlalchemy as sa
from alembic import op

revision = "0004"
down_revision = "0003"
branch_labels = None
depends_on = None


def upgrade() -> None:
    table = op.create_table(
        "installation",
        sa.Column("id", sa.String(length=32), nullable=False),
        sa.Column("created_at", sa.DateTime(), nullable=False),
        sa.PrimaryKeyConstraint("id"),
    )
    op.bulk_insert(table, [{
        "id": secrets.token_hex(6),
        "created_at": datetime.now(timezone.utc).replace(tzinfo=None),
    }])


def downgrade() -> None:
    op.drop_table("installation")
