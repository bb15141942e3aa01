'''add an index

Revision ID: 27c6a30d7c24
Revises: 1975ea83b712
revision = "not-this-one"
'''
from alembic import op

revision = (
    "27c6a30d7c24"
)
down_revision = (
    'ae1027a6acf',  # the docstring above lies about the parent
)
branch_labels = depends_on = None


def upgrade():
    op.execute("SELECT 'add index'")


def downgrade():
    op.execute("SELECT 'drop index'")
