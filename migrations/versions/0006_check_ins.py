"""One name for one thing: the check-in (its table, and the columns that point to it);
the events each inbox row holds as the receiver read them; a clinic's check-in timing
kept under "timing".

Every row is kept: the table and columns are renamed in place (never rebuilt, which on
SQLite would cascade-delete what points to them).

Revision ID: 0006
Revises: 0005
Create Date: 2026-12-06
"""

import sqlalchemy as sa
from alembic import op

revision = "0006"
down_revision = "0005"
branch_labels = None
depends_on = None

INDEXES = ("client_external_id", "status")
POINTING = ("responses", "survey_links")
CLINICS = sa.table("clinics", sa.column("id", sa.Integer), sa.column("settings", sa.JSON))


def _rename(old_table: str, new_table: str, old_column: str, new_column: str) -> None:
    op.rename_table(old_table, new_table)
    for column in INDEXES:
        # SQLite has no ALTER INDEX … RENAME: an index is dropped and made again.
        op.drop_index(f"ix_{old_table}_{column}", table_name=new_table)
        op.create_index(f"ix_{new_table}_{column}", new_table, [column])
    for table in POINTING:
        # Plain ALTER TABLE … RENAME COLUMN (SQLite 3.25+, PostgreSQL): the foreign keys
        # follow, and no table is rebuilt.
        op.execute(f'ALTER TABLE {table} RENAME COLUMN "{old_column}" TO "{new_column}"')


def _move_setting(old: str, new: str) -> None:
    bind = op.get_bind()
    for clinic_id, settings in bind.execute(sa.select(CLINICS.c.id, CLINICS.c.settings)).all():
        if isinstance(settings, dict) and old in settings:
            moved = {(new if key == old else key): value for key, value in settings.items()}
            bind.execute(CLINICS.update().where(CLINICS.c.id == clinic_id)
                         .values(settings=moved))


def upgrade() -> None:
    _rename("invitations", "check_ins", "invitation_id", "check_in_id")
    op.add_column("inbox_events", sa.Column("events", sa.JSON(), nullable=True))
    _move_setting("follow_up", "timing")


def downgrade() -> None:
    _move_setting("timing", "follow_up")
    op.drop_column("inbox_events", "events")
    _rename("check_ins", "invitations", "check_in_id", "invitation_id")
