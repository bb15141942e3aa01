"""base

Revision ID: cccc0000
Revises: None
"""
from alembic import op

revision = 'cccc0000'
down_revision = None
branch_labels = None
depends_on = None


def upgrade():
    op.execute("SELECT 'cccc0000 up'")


def downgrade():
    op.execute("SELECT 'cccc0000 down'")
