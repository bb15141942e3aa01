"""first

Revision ID: aaaa0001
Revises: None
"""
from alembic import op

revision = 'aaaa0001'
down_revision = None
branch_labels = None
depends_on = None


def upgrade():
    op.execute("SELECT 'aaaa0001 up'")


def downgrade():
    op.execute("SELECT 'aaaa0001 down'")
