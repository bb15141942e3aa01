"""create model_deployments

Revision ID: 4c8d2a6f9e13
Revises: b6e14d8a0f97
Create Date: 2024-03-18 13:20:51.730992

Backfills one deployment per production model from model_registry.
"""
from typing import Sequence, Union

from alembic import op
import sqlalchemy as sa


# revision identifiers, used by Alembic.
revision: str = "4c8d2a6f9e13"
down_revision: Union[str, None] = "b6e14d8a0f97"
branch_labels: Union[str, Sequence[str], None] = None
depends_on: Union[str, Sequence[str], None] = None


def upgrade() -> None:
    op.create_table(
        "model_deployments",
        sa.Column("id", sa.Integer(), nullable=False),
        sa.Column("model_id", sa.Integer(), nullable=False),
        sa.Column("environment", sa.String(length=20), nullable=False),
        sa.Column("deployed_at", sa.DateTime(timezone=True), server_default=sa.text("now()"), nullable=False),
        sa.ForeignKeyConstraint(
            ["model_id"], ["predictive_models.id"],
            name="fk_model_deployments_model_id_predictive_models", ondelete="CASCADE",
        ),
        sa.PrimaryKeyConstraint("id", name="pk_model_deployments"),
    )
    op.create_index("ix_model_deployments_model_id", "model_deployments", ["model_id"], unique=False)
    # BUG (this release is broken on purpose): model_registry only exists on
    # the developer's machine, so this statement fails halfway through the
    # revision, after the table above was created in the same transaction.
    op.execute(
        "INSERT INTO model_deployments (model_id, environment) "
        "SELECT model_id, 'production' FROM model_registry WHERE is_production"
    )


def downgrade() -> None:
    op.drop_index("ix_model_deployments_model_id", table_name="model_deployments")
    op.drop_table("model_deployments")
