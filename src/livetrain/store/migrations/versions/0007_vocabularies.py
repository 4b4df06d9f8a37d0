"""Vocabularies and their tokens

Revision ID: 0007
Revises: 0006
Create Date: 2026-12-06 20:40:00
"""

import sqlalchemy as sa
from alembic import op

revision = "0007"
down_revision = "0006"
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.create_table(
        "vocabularies",
        sa.Column("id", sa.String(length=32), primary_key=True),
        sa.Column("name", sa.String(length=200), nullable=False),
        sa.Column("level", sa.String(length=10), nullable=True),
        sa.Column("dataset_id", sa.String(length=64), nullable=True),
        sa.Column("description", sa.Text(), nullable=False),
        sa.Column("next_id", sa.Integer(), nullable=False),
        sa.Column("created_at", sa.Float(), nullable=False),
        sa.Column("updated_at", sa.Float(), nullable=False),
    )
    op.create_index("ix_vocabularies_dataset_id", "vocabularies", ["dataset_id"])
    op.create_table(
        "vocabulary_tokens",
        sa.Column("vocabulary_id", sa.String(length=32), primary_key=True),
        sa.Column("token_id", sa.Integer(), primary_key=True),
        sa.Column("text", sa.String(length=100), nullable=False),
        sa.Column("category", sa.String(length=20), nullable=False),
        sa.Column("count", sa.Integer(), nullable=True),
        sa.UniqueConstraint("vocabulary_id", "text", name="uq_vocabulary_tokens_text"),
    )


def downgrade() -> None:
    op.drop_table("vocabulary_tokens")
    op.drop_index("ix_vocabularies_dataset_id", table_name="vocabularies")
    op.drop_table("vocabularies")
