"""stats

Revision ID: 5hared03
Revises: '5hared02'
"""
from alembic import op

revision = '5hared03'
down_revision = '5hared02'
branch_labels = None
depends_on = 'core'


def upgrade():
    op.execute("SELECT '5hared03 up'")


def downgrade():
    op.execute("SELECT '5hared03 down'")
