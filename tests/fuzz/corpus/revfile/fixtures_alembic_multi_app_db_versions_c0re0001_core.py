"""core tables

Revision ID: c0re0001
Revises: None
"""
from alembic import op

revision = 'c0re0001'
down_revision = None
branch_labels = ('core',)
depends_on = None


def upgrade():
    op.execute("SELECT 'c0re0001 up'")


def downgrade():
    op.execute("SELECT 'c0re0001 down'")
