"""create anomaly detection tables

Revision ID: 9c3e7a5d1f08
Revises: 0d6b2f9e4a71
Create Date: 2024-02-06 08:57:12.410359

"""
from typing import Sequence, Union

from alembic import op
import sqlalchemy as sa
from sqlalchemy.dialects import postgresql

# revision identifiers, used by Alembic.
revision: str = "9c3e7a5d1f08"
down_revision: Union[str, None] = "0d6b2f9e4a71"
branch_labels: Union[str, Sequence[str], None] = None
depends_on: Union[str, Sequence[str], None] = None


def upgrade() -> None:
    op.create_table(
        "anomaly_detection_models",
        sa.Column("id", sa.Integer(), nullable=False),
        sa.Column("organization_id", sa.Integer(), nullable=False),
        sa.Column("predictive_model_id", sa.Integer(), nullable=True),
        sa.Column("name", sa.String(length=120), nullable=False),
        sa.Column("detector", sa.String(length=60), server_default="isolation_forest", nullable=False),
        sa.Column("threshold", sa.Numeric(precision=6, scale=4), server_default="0.95", nullable=False),
        sa.Column("config", postgresql.JSONB(astext_type=sa.Text()), server_default=sa.text("'{}'::jsonb"), nullable=False),
        sa.Column("created_at", sa.DateTime(timezone=True), server_default=sa.text("now()"), nullable=False),
        sa.ForeignKeyConstraint(
            ["organization_id"], ["organizations.id"],
            name="fk_anomaly_detection_models_organization_id_organizations", ondelete="CASCADE",
        ),
        sa.ForeignKeyConstraint(
            ["predictive_model_id"], ["predictive_models.id"],
            name="fk_anomaly_detection_models_predictive_model_id", ondelete="SET NULL",
        ),
        sa.PrimaryKeyConstraint("id", name="pk_anomaly_detection_models"),
    )
    op.create_index("ix_anomaly_detection_models_organization_id", "anomaly_detection_models", ["organization_id"], unique=False)

    op.create_table(
        "anomaly_detection_results",
        sa.Column("id", sa.BigInteger(), nullable=False),
        sa.Column("model_id", sa.Integer(), nullable=False),
        sa.Column("invoice_id", sa.Integer(), nullable=True),
        sa.Column("score", sa.Float(), nullable=False),
        sa.Column("is_anomaly", sa.Boolean(), server_default=sa.text("false"), nullable=False),
        sa.Column("details", postgresql.JSONB(astext_type=sa.Text()), nullable=True),
        sa.Column("detected_at", sa.DateTime(timezone=True), server_default=sa.text("now()"), nullable=False),
        sa.ForeignKeyConstraint(
            ["model_id"], ["anomaly_detection_models.id"],
            name="fk_anomaly_detection_results_model_id", ondelete="CASCADE",
        ),
        sa.ForeignKeyConstraint(
            ["invoice_id"], ["invoices.id"],
            name="fk_anomaly_detection_results_invoice_id_invoices", ondelete="CASCADE",
        ),
        sa.PrimaryKeyConstraint("id", name="pk_anomaly_detection_results"),
    )
    op.create_index("ix_anomaly_detection_results_model_id", "anomaly_detection_results", ["model_id"], unique=False)
    op.create_index("ix_anomaly_detection_results_invoice_id", "anomaly_detection_results", ["invoice_id"], unique=False)


def downgrade() -> None:
    op.drop_index("ix_anomaly_detection_results_invoice_id", table_name="anomaly_detection_results")
    op.drop_index("ix_anomaly_detection_results_model_id", table_name="anomaly_detection_results")
    op.drop_table("anomaly_detection_results")
    op.drop_index("ix_anomaly_detection_models_organization_id", table_name="anomaly_detection_models")
    op.drop_table("anomaly_detection_models")
