"""The clinic admins' console: admins (per clinic, or operators), their single-use
sign-in links and their sessions (tokens kept hashed), and the alerts emailed to them.

Only new tables: every existing row stays as it is.

Revision ID: 0009
Revises: 0008
Create Date: 2026-12-06
"""

import sqlalchemy as sa
from alembic import op

revision = "0009"
down_revision = "0008"
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.create_table(
        "admins",
        sa.Column("id", sa.Integer(), nullable=False),
        sa.Column("email", sa.String(length=320), nullable=False),
        sa.Column("clinic_id", sa.Integer(), nullable=True),
        sa.Column("operator", sa.Boolean(), server_default=sa.false(), nullable=False),
        sa.Column("created_at", sa.DateTime(), nullable=False),
        sa.Column("last_sign_in_at", sa.DateTime(), nullable=True),
        sa.ForeignKeyConstraint(["clinic_id"], ["clinics.id"], ondelete="CASCADE"),
        sa.PrimaryKeyConstraint("id"),
        sa.UniqueConstraint("email"),
    )
    op.create_index("ix_admins_clinic_id", "admins", ["clinic_id"])
    for table in ("admin_sign_in_links", "admin_sessions"):
        extra = ([sa.Column("expires_at", sa.DateTime(), nullable=False),
                  sa.Column("used_at", sa.DateTime(), nullable=True)]
                 if table == "admin_sign_in_links" else
                 [sa.Column("last_seen_at", sa.DateTime(), nullable=False),
                  sa.Column("ended_at", sa.DateTime(), nullable=True)])
        op.create_table(
            table,
            sa.Column("id", sa.Integer(), nullable=False),
            sa.Column("admin_id", sa.Integer(), nullable=False),
            sa.Column("token_hash", sa.String(length=64), nullable=False),
            sa.Column("created_at", sa.DateTime(), nullable=False),
            *extra,
            sa.ForeignKeyConstraint(["admin_id"], ["admins.id"], ondelete="CASCADE"),
            sa.PrimaryKeyConstraint("id"),
            sa.UniqueConstraint("token_hash"),
        )
        op.create_index(f"ix_{table}_admin_id", table, ["admin_id"])
    op.create_table(
        "admin_alerts",
        sa.Column("id", sa.Integer(), nullable=False),
        sa.Column("clinic_id", sa.Integer(), nullable=False),
        sa.Column("kind", sa.String(length=32), nullable=False),
        sa.Column("day", sa.String(length=10), nullable=False),
        sa.Column("sent_at", sa.DateTime(), nullable=False),
        sa.Column("detail", sa.Text(), nullable=True),
        sa.ForeignKeyConstraint(["clinic_id"], ["clinics.id"], ondelete="CASCADE"),
        sa.PrimaryKeyConstraint("id"),
        sa.UniqueConstraint("clinic_id", "kind", "day"),
    )


def downgrade() -> None:
    op.drop_table("admin_alerts")
    for table in ("admin_sessions", "admin_sign_in_links"):
        op.drop_index(f"ix_{table}_admin_id", table_name=table)
        op.drop_table(table)
    op.drop_index("ix_admins_clinic_id", table_name="admins")
    op.drop_table("admins")
