"""third

Revision ID: aaaa0003
Revises: 'aaaa0002'
"""
from alembic import op

revision = 'aaaa0003'
down_revision = 'aaaa0002'
branch_labels = None
depends_on = None


def upgrade():
    op.execute("SELECT 'aaaa0003 up'")


def downgrade():
    op.execute("SELECT 'aaaa0003 down'")
