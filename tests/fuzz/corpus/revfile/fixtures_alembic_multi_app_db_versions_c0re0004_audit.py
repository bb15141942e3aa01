"""audit

Revision ID: c0re0004
Revises: 'c0re0002'
"""
from alembic import op

revision = 'c0re0004'
down_revision = 'c0re0002'
branch_labels = None
depends_on = None


def upgrade():
    op.execute("SELECT 'c0re0004 up'")


def downgrade():
    op.execute("SELECT 'c0re0004 down'")
