"""orders

Revision ID: c0re0003
Revises: 'c0re0002'
"""
from alembic import op

revision = 'c0re0003'
down_revision = 'c0re0002'
branch_labels = None
depends_on = None


def upgrade():
    op.execute("SELECT 'c0re0003 up'")


def downgrade():
    op.execute("SELECT 'c0re0003 down'")
