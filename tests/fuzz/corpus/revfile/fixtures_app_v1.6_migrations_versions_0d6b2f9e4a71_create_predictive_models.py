"""create predictive_models

Revision ID: 0d6b2f9e4a71
Revises: 5e9f3b7a1c62
Create Date: 2024-01-22 14:05:31.882104

"""
from typing import Sequence, Union

from alembic import op
import sqlalchemy as sa
from sqlalchemy.dialects import postgresql

# revision identifiers, used by Alembic.
revision: str = "0d6b2f9e4a71"
down_revision: Union[str, None] = "5e9f3b7a1c62"
branch_labels: Union[str, Sequence[str], None] = None
depends_on: Union[str, Sequence[str], None] = None


def upgrade() -> None:
    op.create_table(
        "predictive_models",
        sa.Column("id", sa.Integer(), nullable=False),
        sa.Column("organization_id", sa.Integer(), nullable=False),
        sa.Column("created_by_id", sa.Integer(), nullable=True),
        sa.Column("name", sa.String(length=120), nullable=False),
        sa.Column("algorithm", sa.String(length=60), nullable=False),
        sa.Column("version", sa.String(length=40), nullable=False),
        # Relative to ML_MODEL_STORAGE_PATH; the weights are not in the database.
        sa.Column("storage_path", sa.String(length=500), nullable=False),
        sa.Column("status", sa.String(length=20), server_default="training", nullable=False),
        sa.Column("metrics", postgresql.JSONB(astext_type=sa.Text()), server_default=sa.text("'{}'::jsonb"), nullable=False),
        sa.Column("created_at", sa.DateTime(timezone=True), server_default=sa.text("now()"), nullable=False),
        sa.ForeignKeyConstraint(
            ["organization_id"], ["organizations.id"],
            name="fk_predictive_models_organization_id_organizations", ondelete="CASCADE",
        ),
        sa.ForeignKeyConstraint(
            ["created_by_id"], ["users.id"],
            name="fk_predictive_models_created_by_id_users", ondelete="SET NULL",
        ),
        sa.PrimaryKeyConstraint("id", name="pk_predictive_models"),
        sa.UniqueConstraint("organization_id", "name", "version", name="uq_predictive_models_organization_id_name_version"),
    )
    op.create_index("ix_predictive_models_organization_id", "predictive_models", ["organization_id"], unique=False)


def downgrade() -> None:
    op.drop_index("ix_predictive_models_organization_id", table_name="predictive_models")
    op.drop_table("predictive_models")
