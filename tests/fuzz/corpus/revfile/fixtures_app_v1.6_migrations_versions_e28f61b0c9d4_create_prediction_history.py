"""create prediction_history

Revision ID: e28f61b0c9d4
Revises: a1d4c8e7b359
Create Date: 2024-02-13 11:48:26.907741

"""
from typing import Sequence, Union

from alembic import op
import sqlalchemy as sa
from sqlalchemy.dialects import postgresql

# revision identifiers, used by Alembic.
revision: str = "e28f61b0c9d4"
down_revision: Union[str, None] = "a1d4c8e7b359"
branch_labels: Union[str, Sequence[str], None] = None
# prediction_history references predictive_models, which the main line
# creates: depend on that revision without merging the branches here.
depends_on: Union[str, Sequence[str], None] = "0d6b2f9e4a71"


def upgrade() -> None:
    op.create_table(
        "prediction_history",
        sa.Column("id", sa.BigInteger(), nullable=False),
        sa.Column("model_id", sa.Integer(), nullable=False),
        sa.Column("external_data_source_id", sa.Integer(), nullable=True),
        sa.Column("requested_by_id", sa.Integer(), nullable=True),
        sa.Column("input", postgresql.JSONB(astext_type=sa.Text()), nullable=False),
        sa.Column("output", postgresql.JSONB(astext_type=sa.Text()), nullable=True),
        sa.Column("latency_ms", sa.Integer(), nullable=True),
        sa.Column("created_at", sa.DateTime(timezone=True), server_default=sa.text("now()"), nullable=False),
        sa.ForeignKeyConstraint(
            ["model_id"], ["predictive_models.id"],
            name="fk_prediction_history_model_id_predictive_models", ondelete="CASCADE",
        ),
        sa.ForeignKeyConstraint(
            ["external_data_source_id"], ["external_data_sources.id"],
            name="fk_prediction_history_external_data_source_id", ondelete="SET NULL",
        ),
        sa.ForeignKeyConstraint(
            ["requested_by_id"], ["users.id"],
            name="fk_prediction_history_requested_by_id_users", ondelete="SET NULL",
        ),
        sa.PrimaryKeyConstraint("id", name="pk_prediction_history"),
    )
    op.create_index("ix_prediction_history_model_id", "prediction_history", ["model_id"], unique=False)
    op.create_index("ix_prediction_history_created_at", "prediction_history", ["created_at"], unique=False)


def downgrade() -> None:
    op.drop_index("ix_prediction_history_created_at", table_name="prediction_history")
    op.drop_index("ix_prediction_history_model_id", table_name="prediction_history")
    op.drop_table("prediction_history")
