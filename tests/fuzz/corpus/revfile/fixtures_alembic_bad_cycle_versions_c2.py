"""two

Revision ID: cccc0002
Revises: 'cccc0001'
"""
from alembic import op

revision = 'cccc0002'
down_revision = 'cccc0001'
branch_labels = None
depends_on = None


def upgrade():
    op.execute("SELECT 'cccc0002 up'")


def downgrade():
    op.execute("SELECT 'cccc0002 down'")
