"""experiments; uploaded datasets' files and validation split; scikit-learn runs and their results

Revision ID: 0002
Revises: 0001
Create Date: 2026-11-22 17:00:00
"""

import sqlalchemy as sa
from alembic import op

revision = "0002"
down_revision = "0001"
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.create_table(
        "experiments",
        sa.Column("id", sa.String(length=64), nullable=False),
        sa.Column("name", sa.String(length=200), nullable=False),
        sa.Column("description", sa.Text(), nullable=False),
        sa.Column("created_at", sa.Float(), nullable=False),
        sa.PrimaryKeyConstraint("id"),
    )
    op.create_index(op.f("ix_experiments_created_at"), "experiments", ["created_at"], unique=False)
    with op.batch_alter_table("datasets") as batch:
        batch.add_column(sa.Column("n_val", sa.Integer(), nullable=False, server_default="0"))
        batch.add_column(sa.Column("content_sha256", sa.String(length=64), nullable=True))
        batch.add_column(sa.Column("files", sa.JSON(), nullable=False, server_default="{}"))
    with op.batch_alter_table("runs") as batch:
        batch.add_column(sa.Column("algorithm", sa.String(length=40), nullable=False, server_default="network"))
        batch.add_column(sa.Column("seed", sa.Integer(), nullable=True))
        batch.add_column(sa.Column("metrics", sa.JSON(), nullable=False, server_default="{}"))
        batch.add_column(sa.Column("importances", sa.JSON(), nullable=True))
        batch.add_column(sa.Column("model_path", sa.String(length=500), nullable=True))
        batch.add_column(sa.Column("model_sha256", sa.String(length=64), nullable=True))
        batch.add_column(sa.Column("repro", sa.JSON(), nullable=False, server_default="{}"))
        batch.add_column(sa.Column("rerun_of", sa.String(length=64), nullable=True))
    # runs from before experiments existed belong to the default one
    op.execute("UPDATE runs SET experiment_id = 'default' WHERE experiment_id IS NULL")


def downgrade() -> None:
    with op.batch_alter_table("runs") as batch:
        for name in ("rerun_of", "repro", "model_sha256", "model_path", "importances", "metrics", "seed",
                     "algorithm"):
            batch.drop_column(name)
    with op.batch_alter_table("datasets") as batch:
        for name in ("files", "content_sha256", "n_val"):
            batch.drop_column(name)
    op.drop_index(op.f("ix_experiments_created_at"), table_name="experiments")
    op.drop_table("experiments")
