"""add prediction feedback

Revision ID: c5e8a2f70b14
Revises: b6e14d8a0f97
Create Date: 2024-03-25 09:41:17.203518

"""
from typing import Sequence, Union

from alembic import op
import sqlalchemy as sa
from sqlalchemy.dialects import postgresql

# revision identifiers, used by Alembic.
revision: str = "c5e8a2f70b14"
down_revision: Union[str, None] = "b6e14d8a0f97"
branch_labels: Union[str, Sequence[str], None] = None
depends_on: Union[str, Sequence[str], None] = None


def upgrade() -> None:
    op.add_column(
        "prediction_history",
        sa.Column("feedback", postgresql.JSONB(astext_type=sa.Text()), nullable=True),
    )


def downgrade() -> None:
    op.drop_column("prediction_history", "feedback")
