"""add invoice status and due date

Revision ID: 5e9f3b7a1c62
Revises: c47d0e9a2f13
Create Date: 2023-09-19 10:13:44.035127

Existing invoices are backfilled: those already issued get status
'issued' and a due date 30 days after issue.
"""
from typing import Sequence, Union

from alembic import op
import sqlalchemy as sa


# revision identifiers, used by Alembic.
revision: str = '5e9f3b7a1c62'
down_revision: Union[str, None] = 'c47d0e9a2f13'
branch_labels: Union[str, Sequence[str], None] = None
depends_on: Union[str, Sequence[str], None] = None


def upgrade() -> None:
    op.add_column('invoices', sa.Column('status', sa.String(length=20), server_default='draft', nullable=False))
    op.add_column('invoices', sa.Column('due_date', sa.Date(), nullable=True))
    op.execute(
        "UPDATE invoices SET status = 'issued', "
        "due_date = (issued_at AT TIME ZONE 'UTC')::date + 30 "
        "WHERE issued_at IS NOT NULL"
    )
    op.create_check_constraint(
        'ck_invoices_status',
        'invoices',
        "status IN ('draft', 'issued', 'paid', 'void')",
    )
    op.create_index('ix_invoices_status_due_date', 'invoices', ['status', 'due_date'], unique=False)


def downgrade() -> None:
    op.drop_index('ix_invoices_status_due_date', table_name='invoices')
    op.drop_constraint('ck_invoices_status', 'invoices', type_='check')
    op.drop_column('invoices', 'due_date')
    op.drop_column('invoices', 'status')
