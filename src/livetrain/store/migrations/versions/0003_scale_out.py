"""scale-out: a run's queue, device, worker and stop request; workers beside servers in the heartbeat table

Revision ID: 0003
Revises: 0002
Create Date: 2026-12-06 06:00:00
"""

import sqlalchemy as sa
from alembic import op

revision = "0003"
down_revision = "0002"
branch_labels = None
depends_on = None


def upgrade() -> None:
    with op.batch_alter_table("runs") as batch:
        batch.add_column(sa.Column("queue", sa.String(length=100), nullable=True))
        batch.add_column(sa.Column("device", sa.String(length=100), nullable=True))
        batch.add_column(sa.Column("worker", sa.String(length=200), nullable=True))
        batch.add_column(sa.Column("stop_requested", sa.String(length=10), nullable=True))
    with op.batch_alter_table("servers") as batch:
        batch.add_column(sa.Column("kind", sa.String(length=10), nullable=False, server_default="server"))
        batch.add_column(sa.Column("info", sa.JSON(), nullable=False, server_default="{}"))


def downgrade() -> None:
    with op.batch_alter_table("servers") as batch:
        batch.drop_column("info")
        batch.drop_column("kind")
    with op.batch_alter_table("runs") as batch:
        for name in ("stop_requested", "worker", "device", "queue"):
            batch.drop_column(name)
