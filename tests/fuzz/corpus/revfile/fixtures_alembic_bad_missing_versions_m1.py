"""one

Revision ID: mmmm0001
Revises: None
"""
from alembic import op

revision = 'mmmm0001'
down_revision = None
branch_labels = None
depends_on = None


def upgrade():
    op.execute("SELECT 'mmmm0001 up'")


def downgrade():
    op.execute("SELECT 'mmmm0001 down'")
