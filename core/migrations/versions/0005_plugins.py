"""plugins: CRM plugin connections, segment mappings and the write-back outbox

Revision ID: 0005
Revises: 0004
Create Date: 2026-11-26 06:40:00.000000
"""

from alembic import op
import sqlalchemy as sa
from sqlalchemy.dialects import postgresql

revision = '0005'
down_revision = '0004'
branch_labels = None
depends_on = None

BigId = sa.BigInteger().with_variant(sa.Integer(), 'sqlite')
Json = sa.JSON().with_variant(postgresql.JSONB(astext_type=sa.Text()), 'postgresql')
Stamp = sa.DateTime(timezone=True)


def upgrade() -> None:
    op.create_table('plugin_connections',
    sa.Column('id', BigId, nullable=False),
    sa.Column('workspace_id', BigId, nullable=False),
    sa.Column('plugin', sa.String(length=64), nullable=False),
    sa.Column('settings_encrypted', sa.Text(), nullable=False),
    sa.Column('webhook_token', sa.String(length=64), nullable=False),
    sa.Column('status', sa.String(length=16), nullable=False),
    sa.Column('status_reason', sa.Text(), nullable=True),
    sa.Column('contacts_cursor', sa.Text(), nullable=True),
    sa.Column('segments_cursor', sa.Text(), nullable=True),
    sa.Column('last_sync_at', Stamp, nullable=True),
    sa.Column('last_sync', Json, nullable=False),
    sa.Column('last_error', sa.Text(), nullable=True),
    sa.Column('last_error_at', Stamp, nullable=True),
    sa.Column('api_usage', Json, nullable=False),
    sa.Column('created_at', Stamp, nullable=False),
    sa.Column('updated_at', Stamp, nullable=False),
    sa.ForeignKeyConstraint(['workspace_id'], ['workspaces.id'], name=op.f('fk_plugin_connections_workspace_id_workspaces'), ondelete='CASCADE'),
    sa.PrimaryKeyConstraint('id', name=op.f('pk_plugin_connections')),
    sa.UniqueConstraint('webhook_token', name=op.f('uq_plugin_connections_webhook_token')),
    sa.UniqueConstraint('workspace_id', 'plugin', name=op.f('uq_plugin_connections_workspace_id_plugin'))
    )
    op.create_table('plugin_segments',
    sa.Column('connection_id', BigId, nullable=False),
    sa.Column('external_id', sa.String(length=255), nullable=False),
    sa.Column('group_id', BigId, nullable=False),
    sa.ForeignKeyConstraint(['connection_id'], ['plugin_connections.id'], name=op.f('fk_plugin_segments_connection_id_plugin_connections'), ondelete='CASCADE'),
    sa.ForeignKeyConstraint(['group_id'], ['groups.id'], name=op.f('fk_plugin_segments_group_id_groups'), ondelete='CASCADE'),
    sa.PrimaryKeyConstraint('connection_id', 'external_id', name=op.f('pk_plugin_segments'))
    )
    op.create_table('plugin_outbox',
    sa.Column('id', BigId, nullable=False),
    sa.Column('connection_id', BigId, nullable=False),
    sa.Column('event_key', sa.String(length=120), nullable=False),
    sa.Column('kind', sa.String(length=16), nullable=False),
    sa.Column('record_id', sa.String(length=255), nullable=False),
    sa.Column('payload', Json, nullable=False),
    sa.Column('at', Stamp, nullable=False),
    sa.Column('status', sa.String(length=16), nullable=False),
    sa.Column('attempts', sa.Integer(), nullable=False),
    sa.Column('next_attempt_at', Stamp, nullable=False),
    sa.Column('last_error', sa.Text(), nullable=True),
    sa.Column('remote_id', sa.String(length=64), nullable=True),
    sa.Column('created_at', Stamp, nullable=False),
    sa.Column('done_at', Stamp, nullable=True),
    sa.ForeignKeyConstraint(['connection_id'], ['plugin_connections.id'], name=op.f('fk_plugin_outbox_connection_id_plugin_connections'), ondelete='CASCADE'),
    sa.PrimaryKeyConstraint('id', name=op.f('pk_plugin_outbox')),
    sa.UniqueConstraint('connection_id', 'event_key', name=op.f('uq_plugin_outbox_connection_id_event_key'))
    )
    with op.batch_alter_table('plugin_outbox', schema=None) as batch_op:
        batch_op.create_index('ix_plugin_outbox_due', ['connection_id', 'status', 'next_attempt_at'], unique=False)


def downgrade() -> None:
    with op.batch_alter_table('plugin_outbox', schema=None) as batch_op:
        batch_op.drop_index('ix_plugin_outbox_due')
    op.drop_table('plugin_outbox')
    op.drop_table('plugin_segments')
    op.drop_table('plugin_connections')
