"""one

Revision ID: dddd0001
Revises: None
"""
from alembic import op

revision = 'dddd0001'
down_revision = None
branch_labels = None
depends_on = None


def upgrade():
    op.execute("SELECT 'dddd0001 up'")


def downgrade():
    op.execute("SELECT 'dddd0001 down'")
