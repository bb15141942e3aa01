"""reports need orders

Revision ID: 5hared02
Revises: '5hared01'
"""
from alembic import op

revision = '5hared02'
down_revision = '5hared01'
branch_labels = None
depends_on = ('c0re0003',)


def upgrade():
    op.execute("SELECT '5hared02 up'")


def downgrade():
    op.execute("SELECT '5hared02 down'")
