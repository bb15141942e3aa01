"""enable ml features per organization

Revision ID: b6e14d8a0f97
Revises: 7f0a3c9b2e56
Create Date: 2024-03-04 15:37:09.554021

Data migration: enterprise organizations get ML features enabled, and
their active users become ML viewers.
"""
from typing import Sequence, Union

from alembic import op
import sqlalchemy as sa


# revision identifiers, used by Alembic.
revision: str = "b6e14d8a0f97"
down_revision: Union[str, None] = "7f0a3c9b2e56"
branch_labels: Union[str, Sequence[str], None] = None
depends_on: Union[str, Sequence[str], None] = None


def upgrade() -> None:
    op.add_column(
        "organizations",
        sa.Column("ml_features_enabled", sa.Boolean(), server_default=sa.text("false"), nullable=False),
    )
    op.add_column(
        "users",
        sa.Column("ml_role", sa.String(length=20), server_default="none", nullable=False),
    )
    op.execute("UPDATE organizations SET ml_features_enabled = true WHERE plan = 'enterprise'")
    op.execute(
        "UPDATE users SET ml_role = 'viewer' "
        "WHERE is_active AND organization_id IN "
        "(SELECT id FROM organizations WHERE ml_features_enabled)"
    )
    op.create_check_constraint(
        "ck_users_ml_role", "users", "ml_role IN ('none', 'viewer', 'editor', 'admin')"
    )


def downgrade() -> None:
    op.drop_constraint("ck_users_ml_role", "users", type_="check")
    op.drop_column("users", "ml_role")
    op.drop_column("organizations", "ml_features_enabled")
