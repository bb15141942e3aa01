"""parent not there

Revision ID: mmmm0002
Revises: 'mmmm9999'
"""
from alembic import op

revision = 'mmmm0002'
down_revision = 'mmmm9999'
branch_labels = None
depends_on = None


def upgrade():
    op.execute("SELECT 'mmmm0002 up'")


def downgrade():
    op.execute("SELECT 'mmmm0002 down'")
