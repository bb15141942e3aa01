"""one

Revision ID: nnnn0001
Revises: None
"""
from alembic import op

revision = 'nnnn0001'
down_revision = None
branch_labels = None
depends_on = None


def upgrade():
    op.execute("SELECT 'nnnn0001 up'")


def downgrade():
    op.execute("SELECT 'nnnn0001 down'")
