"""second

Revision ID: aaaa0002
Revises: 'aaaa0001'
"""
from alembic import op

revision = 'aaaa0002'
down_revision = 'aaaa0001'
branch_labels = None
depends_on = None


def upgrade():
    op.execute("SELECT 'aaaa0002 up'")


def downgrade():
    op.execute("SELECT 'aaaa0002 down'")
