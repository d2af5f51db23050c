"""Opt-outs by address and how far a check-in's sending got.

- ``opt_out_addresses``: per clinic, a keyed hash of each address whose owner opted
  out (never the address), so a duplicate client profile with the same address gets
  nothing either; it also caps how many check-ins one address receives.
- ``check_ins.address_hash``: the same keyed hash of the address the check-in went to,
  kept after the address itself is dropped (unsubscribing from an answered check-in, the
  cap per address).
- ``check_ins.smtp_stage``: how far the SMTP exchange got, so a check-in whose worker
  died before the mail server could have the message is sent again.
- ``check_ins.send_attempts``: how many times sending began.

Columns are added in place: ``check_ins`` is never rebuilt (on SQLite a rebuild would
cascade-delete the links and responses that point to it).

Revision ID: 0008
Revises: 0007
Create Date: 2026-12-08
"""

import sqlalchemy as sa
from alembic import op

revision = "0008"
down_revision = "0007"
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.create_table(
        "opt_out_addresses",
        sa.Column("id", sa.Integer(), primary_key=True),
        sa.Column("clinic_id", sa.Integer(),
                  sa.ForeignKey("clinics.id", ondelete="CASCADE"), nullable=False),
        sa.Column("address_hash", sa.String(64), nullable=False),
        sa.Column("created_at", sa.DateTime(), nullable=False),
        sa.UniqueConstraint("clinic_id", "address_hash",
                            name="uq_opt_out_addresses_clinic_address"),
    )
    op.add_column("check_ins", sa.Column("address_hash", sa.String(64), nullable=True))
    op.add_column("check_ins", sa.Column("smtp_stage", sa.String(16), nullable=True))
    op.add_column("check_ins", sa.Column("send_attempts", sa.Integer(), nullable=False,
                                         server_default="0"))
    op.create_index("ix_check_ins_address_hash", "check_ins", ["address_hash"])


def downgrade() -> None:
    op.drop_index("ix_check_ins_address_hash", table_name="check_ins")
    with op.batch_alter_table("check_ins") as batch:
        batch.drop_column("send_attempts")
        batch.drop_column("smtp_stage")
        batch.drop_column("address_hash")
    op.drop_table("opt_out_addresses")
