"""create external_data_sources

Revision ID: a1d4c8e7b359
Revises: 8b1e5d2c94a0
Create Date: 2023-11-08 17:30:02.663518

Starts the 'ml' branch.  It was written on a feature branch cut before the
invoice status work, so it revises 'create users' (8b1e5d2c94a0) and not
the 1.5 head; a merge revision joins it back.
"""
from alembic import op
import sqlalchemy as sa
from sqlalchemy.dialects import postgresql


# revision identifiers, used by Alembic.
revision = 'a1d4c8e7b359'
down_revision = '8b1e5d2c94a0'
branch_labels = ('ml',)
depends_on = None


def upgrade() -> None:
    op.create_table(
        'external_data_sources',
        sa.Column('id', sa.Integer(), nullable=False),
        sa.Column('organization_id', sa.Integer(), nullable=False),
        sa.Column('created_by_id', sa.Integer(), nullable=True),
        sa.Column('name', sa.String(length=120), nullable=False),
        sa.Column('kind', sa.String(length=40), nullable=False),
        # Connection details only; secrets are looked up by name at run time.
        sa.Column('config', postgresql.JSONB(astext_type=sa.Text()), server_default=sa.text("'{}'::jsonb"), nullable=False),
        sa.Column('refresh_interval_s', sa.Integer(), server_default='3600', nullable=False),
        sa.Column('enabled', sa.Boolean(), server_default=sa.text('true'), nullable=False),
        sa.Column('last_synced_at', sa.DateTime(timezone=True), nullable=True),
        sa.Column('created_at', sa.DateTime(timezone=True), server_default=sa.text('now()'), nullable=False),
        sa.ForeignKeyConstraint(
            ['organization_id'], ['organizations.id'],
            name='fk_external_data_sources_organization_id_organizations', ondelete='CASCADE',
        ),
        sa.ForeignKeyConstraint(
            ['created_by_id'], ['users.id'],
            name='fk_external_data_sources_created_by_id_users', ondelete='SET NULL',
        ),
        sa.PrimaryKeyConstraint('id', name='pk_external_data_sources'),
        sa.UniqueConstraint('organization_id', 'name', name='uq_external_data_sources_organization_id_name'),
    )
    op.create_index('ix_external_data_sources_organization_id', 'external_data_sources', ['organization_id'], unique=False)


def downgrade() -> None:
    op.drop_index('ix_external_data_sources_organization_id', table_name='external_data_sources')
    op.drop_table('external_data_sources')
