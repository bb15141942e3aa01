"""shared tables

Revision ID: 5hared01
Revises: None
"""
from alembic import op

revision = '5hared01'
down_revision = None
branch_labels = ['shared']
depends_on = None


def upgrade():
    op.execute("SELECT '5hared01 up'")


def downgrade():
    op.execute("SELECT '5hared01 down'")
