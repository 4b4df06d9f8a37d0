"""The model registry: registered models, their versions, aliases and alias history, kept predictions,
feedback and retrainings

Revision ID: 0005
Revises: 0004
Create Date: 2026-12-06 17:00:00
"""

import sqlalchemy as sa
from alembic import op

revision = "0005"
down_revision = "0004"
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.create_table(
        "registered_models",
        sa.Column("name", sa.String(length=100), primary_key=True),
        sa.Column("description", sa.Text(), nullable=False),
        sa.Column("created_at", sa.Float(), nullable=False),
        sa.Column("policy", sa.JSON(), nullable=True),
    )
    op.create_table(
        "model_versions",
        sa.Column("model_name", sa.String(length=100), primary_key=True),
        sa.Column("version", sa.Integer(), primary_key=True),
        sa.Column("network_id", sa.String(length=64), nullable=True),
        sa.Column("network_version", sa.Integer(), nullable=True),
        sa.Column("run_id", sa.String(length=64), nullable=True),
        sa.Column("metrics", sa.JSON(), nullable=False),
        sa.Column("created_by", sa.String(length=200), nullable=False),
        sa.Column("created_at", sa.Float(), nullable=False),
    )
    op.create_index("ix_model_versions_network_id", "model_versions", ["network_id"])
    op.create_table(
        "model_aliases",
        sa.Column("model_name", sa.String(length=100), primary_key=True),
        sa.Column("alias", sa.String(length=40), primary_key=True),
        sa.Column("version", sa.Integer(), nullable=False),
    )
    op.create_table(
        "model_alias_history",
        sa.Column("id", sa.Integer(), primary_key=True, autoincrement=True),
        sa.Column("model_name", sa.String(length=100), nullable=False),
        sa.Column("alias", sa.String(length=40), nullable=False),
        sa.Column("from_version", sa.Integer(), nullable=True),
        sa.Column("to_version", sa.Integer(), nullable=True),
        sa.Column("who", sa.String(length=200), nullable=False),
        sa.Column("reason", sa.Text(), nullable=False),
        sa.Column("at", sa.Float(), nullable=False),
    )
    op.create_index("ix_model_alias_history_model_name", "model_alias_history", ["model_name"])
    op.create_table(
        "model_predictions",
        sa.Column("id", sa.String(length=32), primary_key=True),
        sa.Column("model_name", sa.String(length=100), nullable=False),
        sa.Column("version", sa.Integer(), nullable=False),
        sa.Column("alias", sa.String(length=40), nullable=True),
        sa.Column("input", sa.JSON(), nullable=False),
        sa.Column("output", sa.JSON(), nullable=False),
        sa.Column("created_at", sa.Float(), nullable=False),
    )
    op.create_index("ix_model_predictions_model_name", "model_predictions", ["model_name"])
    op.create_table(
        "model_feedback",
        sa.Column("id", sa.Integer(), primary_key=True, autoincrement=True),
        sa.Column("model_name", sa.String(length=100), nullable=False),
        sa.Column("prediction_id", sa.String(length=32), nullable=True),
        sa.Column("version", sa.Integer(), nullable=True),
        sa.Column("input", sa.JSON(), nullable=False),
        sa.Column("predicted", sa.JSON(), nullable=True),
        sa.Column("label", sa.JSON(), nullable=False),
        sa.Column("note", sa.Text(), nullable=False),
        sa.Column("retraining_id", sa.String(length=32), nullable=True),
        sa.Column("created_at", sa.Float(), nullable=False),
    )
    op.create_index("ix_model_feedback_model_name", "model_feedback", ["model_name"])
    op.create_index("ix_model_feedback_retraining_id", "model_feedback", ["retraining_id"])
    op.create_table(
        "retrainings",
        sa.Column("id", sa.String(length=32), primary_key=True),
        sa.Column("model_name", sa.String(length=100), nullable=False),
        sa.Column("status", sa.String(length=20), nullable=False),
        sa.Column("trigger", sa.String(length=10), nullable=False),
        sa.Column("champion_version", sa.Integer(), nullable=False),
        sa.Column("metric", sa.String(length=40), nullable=False),
        sa.Column("run_id", sa.String(length=64), nullable=True),
        sa.Column("dataset_id", sa.String(length=64), nullable=True),
        sa.Column("challenger_version", sa.Integer(), nullable=True),
        sa.Column("feedback_train", sa.Integer(), nullable=False),
        sa.Column("feedback_holdout", sa.Integer(), nullable=False),
        sa.Column("champion_metrics", sa.JSON(), nullable=False),
        sa.Column("challenger_metrics", sa.JSON(), nullable=False),
        sa.Column("reason", sa.Text(), nullable=False),
        sa.Column("created_at", sa.Float(), nullable=False),
        sa.Column("finished_at", sa.Float(), nullable=True),
    )
    op.create_index("ix_retrainings_model_name", "retrainings", ["model_name"])


def downgrade() -> None:
    for table in ("retrainings", "model_feedback", "model_predictions", "model_alias_history", "model_aliases",
                  "model_versions", "registered_models"):
        op.drop_table(table)
