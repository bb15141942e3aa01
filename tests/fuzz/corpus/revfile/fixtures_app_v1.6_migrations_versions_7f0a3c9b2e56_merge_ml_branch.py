"""merge ml branch

Revision ID: 7f0a3c9b2e56
Revises: 9c3e7a5d1f08, e28f61b0c9d4
Create Date: 2024-02-20 09:12:45.118662

"""
from typing import Sequence, Union

from alembic import op
import sqlalchemy as sa


# revision identifiers, used by Alembic.
revision: str = "7f0a3c9b2e56"
down_revision: Union[str, Sequence[str], None] = (
    "9c3e7a5d1f08",  # anomaly detection tables (main line)
    "e28f61b0c9d4",  # prediction_history (ml branch)
)
branch_labels: Union[str, Sequence[str], None] = None
depends_on: Union[str, Sequence[str], None] = None


def upgrade() -> None:
    pass


def downgrade() -> None:
    pass
