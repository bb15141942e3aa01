"""users

Revision ID: c0re0002
Revises: 'c0re0001'
"""
from alembic import op

revision = 'c0re0002'
down_revision = 'c0re0001'
branch_labels = None
depends_on = None


def upgrade():
    op.execute("SELECT 'c0re0002 up'")


def downgrade():
    op.execute("SELECT 'c0re0002 down'")
