"""Square: merchant ids on clinics, booking notes, the application's webhook subscription.

Revision ID: 0002
Revises: 0001
Create Date: 2026-11-26
"""

import sqlalchemy as sa
from alembic import op

revision = "0002"
down_revision = "0001"
branch_labels = None
depends_on = None


def upgrade() -> None:
    with op.batch_alter_table("clinics", schema=None) as batch_op:
        batch_op.add_column(sa.Column("account_id", sa.String(length=255), nullable=True))
        batch_op.create_index(batch_op.f("ix_clinics_account_id"), ["account_id"], unique=False)
    with op.batch_alter_table("appointments", schema=None) as batch_op:
        batch_op.add_column(sa.Column("noted_response_id", sa.Integer(), nullable=True))
    op.create_table(
        "platform_webhooks",
        sa.Column("id", sa.Integer(), nullable=False),
        sa.Column("platform", sa.String(length=32), nullable=False),
        sa.Column("notification_url", sa.Text(), nullable=False),
        sa.Column("subscription_id", sa.String(length=255), nullable=True),
        sa.Column("credentials", sa.Text(), nullable=False),
        sa.Column("created_at", sa.DateTime(), nullable=False),
        sa.PrimaryKeyConstraint("id"),
        sa.UniqueConstraint("platform", "notification_url"),
    )


def downgrade() -> None:
    op.drop_table("platform_webhooks")
    with op.batch_alter_table("appointments", schema=None) as batch_op:
        batch_op.drop_column("noted_response_id")
    with op.batch_alter_table("clinics", schema=None) as batch_op:
        batch_op.drop_index(batch_op.f("ix_clinics_account_id"))
        batch_op.drop_column("account_id")
