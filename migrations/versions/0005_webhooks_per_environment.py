"""Square's sandbox and production each keep their own application webhook.

Revision ID: 0005
Revises: 0004
Create Date: 2026-11-26
"""

import sqlalchemy as sa
from alembic import op

revision = "0005"
down_revision = "0004"
branch_labels = None
depends_on = None

# 0002 left the unique constraint unnamed: PostgreSQL named it itself, SQLite did not
# (batch mode rebuilds the table, and this convention names the one it reads back).
POSTGRES_NAME = "platform_webhooks_platform_notification_url_key"
SQLITE_NAMING = {"uq": "uq_%(table_name)s_%(column_0_name)s"}
SQLITE_NAME = "uq_platform_webhooks_platform"


def _old_constraint_name() -> str:
    return SQLITE_NAME if op.get_bind().dialect.name == "sqlite" else POSTGRES_NAME


def upgrade() -> None:
    # Subscriptions stored before this were made for the environment then configured,
    # which for a live Rapport is production.
    with op.batch_alter_table("platform_webhooks", naming_convention=SQLITE_NAMING) as batch:
        batch.add_column(sa.Column("environment", sa.String(length=16), nullable=False,
                                   server_default="production"))
        batch.drop_constraint(_old_constraint_name(), type_="unique")
        batch.create_unique_constraint("uq_platform_webhooks_environment_url",
                                       ["platform", "environment", "notification_url"])


def downgrade() -> None:
    with op.batch_alter_table("platform_webhooks", naming_convention=SQLITE_NAMING) as batch:
        batch.drop_constraint("uq_platform_webhooks_environment_url", type_="unique")
        batch.create_unique_constraint(_old_constraint_name(), ["platform", "notification_url"])
        batch.drop_column("environment")
