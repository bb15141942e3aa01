"""one

Revision ID: cccc0001
Revises: 'cccc0002'
"""
from alembic import op

revision = 'cccc0001'
down_revision = 'cccc0002'
branch_labels = None
depends_on = None


def upgrade():
    op.execute("SELECT 'cccc0001 up'")


def downgrade():
    op.execute("SELECT 'cccc0001 down'")
