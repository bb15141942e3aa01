"""one

Revision ID: xxxx0001
Revises: None
"""
from alembic import op

revision = 'xxxx0001'
down_revision = None
branch_labels = None
depends_on = None


def upgrade():
    op.execute("SELECT 'xxxx0001 up'")


def downgrade():
    op.execute("SELECT 'xxxx0001 down'")
