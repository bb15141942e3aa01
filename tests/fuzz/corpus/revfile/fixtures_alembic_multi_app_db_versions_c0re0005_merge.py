"""merge orders and audit

Revision ID: c0re0005
Revises: ('c0re0003', 'c0re0004')
"""
from alembic import op

revision = 'c0re0005'
down_revision = ('c0re0003', 'c0re0004')
branch_labels = None
depends_on = None


def upgrade():
    op.execute("SELECT 'c0re0005 up'")


def downgrade():
    op.execute("SELECT 'c0re0005 down'")
