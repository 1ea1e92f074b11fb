"""campaigns

Revision ID: 0003
Revises: 0002
Create Date: 2026-11-26 05:57:00.009258
"""

from alembic import op
import sqlalchemy as sa
from sqlalchemy.dialects import postgresql

revision = '0003'
down_revision = '0002'
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.create_table('attribute_names',
    sa.Column('workspace_id', sa.BigInteger().with_variant(sa.Integer(), 'sqlite'), nullable=False),
    sa.Column('name', sa.String(length=100), nullable=False),
    sa.ForeignKeyConstraint(['workspace_id'], ['workspaces.id'], name=op.f('fk_attribute_names_workspace_id_workspaces'), ondelete='CASCADE'),
    sa.PrimaryKeyConstraint('workspace_id', 'name', name=op.f('pk_attribute_names'))
    )
    op.create_table('campaigns',
    sa.Column('id', sa.BigInteger().with_variant(sa.Integer(), 'sqlite'), nullable=False),
    sa.Column('workspace_id', sa.BigInteger().with_variant(sa.Integer(), 'sqlite'), nullable=False),
    sa.Column('name', sa.String(length=200), nullable=False),
    sa.Column('tags', sa.JSON().with_variant(postgresql.JSONB(astext_type=sa.Text()), 'postgresql'), nullable=False),
    sa.Column('kind', sa.String(length=16), nullable=False),
    sa.Column('status', sa.String(length=16), nullable=False),
    sa.Column('status_reason', sa.Text(), nullable=True),
    sa.Column('sender_id', sa.String(length=16), nullable=True),
    sa.Column('audience', sa.JSON().with_variant(postgresql.JSONB(astext_type=sa.Text()), 'postgresql'), nullable=False),
    sa.Column('schedule_at', sa.DateTime(timezone=True), nullable=True),
    sa.Column('throttle_per_hour', sa.Integer(), nullable=False),
    sa.Column('max_parts', sa.Integer(), nullable=False),
    sa.Column('consent_category', sa.String(length=64), nullable=True),
    sa.Column('budget_cap', sa.Numeric(precision=14, scale=4), nullable=True),
    sa.Column('send_window', sa.JSON().with_variant(postgresql.JSONB(astext_type=sa.Text()), 'postgresql'), nullable=True),
    sa.Column('booster', sa.JSON().with_variant(postgresql.JSONB(astext_type=sa.Text()), 'postgresql'), nullable=True),
    sa.Column('settings', sa.JSON().with_variant(postgresql.JSONB(astext_type=sa.Text()), 'postgresql'), nullable=False),
    sa.Column('provider_account_id', sa.BigInteger().with_variant(sa.Integer(), 'sqlite'), nullable=True),
    sa.Column('recipients', sa.Integer(), nullable=False),
    sa.Column('excluded', sa.JSON().with_variant(postgresql.JSONB(astext_type=sa.Text()), 'postgresql'), nullable=False),
    sa.Column('estimated_cost', sa.Numeric(precision=14, scale=4), nullable=True),
    sa.Column('currency', sa.String(length=3), nullable=True),
    sa.Column('created_at', sa.DateTime(timezone=True), nullable=False),
    sa.Column('updated_at', sa.DateTime(timezone=True), nullable=False),
    sa.Column('prepared_at', sa.DateTime(timezone=True), nullable=True),
    sa.Column('started_at', sa.DateTime(timezone=True), nullable=True),
    sa.Column('finished_at', sa.DateTime(timezone=True), nullable=True),
    sa.ForeignKeyConstraint(['workspace_id'], ['workspaces.id'], name=op.f('fk_campaigns_workspace_id_workspaces'), ondelete='CASCADE'),
    sa.PrimaryKeyConstraint('id', name=op.f('pk_campaigns'))
    )
    with op.batch_alter_table('campaigns', schema=None) as batch_op:
        batch_op.create_index('ix_campaigns_ws_status', ['workspace_id', 'status'], unique=False)

    op.create_table('content_rules',
    sa.Column('id', sa.BigInteger().with_variant(sa.Integer(), 'sqlite'), nullable=False),
    sa.Column('workspace_id', sa.BigInteger().with_variant(sa.Integer(), 'sqlite'), nullable=False),
    sa.Column('kind', sa.String(length=16), nullable=False),
    sa.Column('value', sa.String(length=500), nullable=False),
    sa.Column('created_at', sa.DateTime(timezone=True), nullable=False),
    sa.ForeignKeyConstraint(['workspace_id'], ['workspaces.id'], name=op.f('fk_content_rules_workspace_id_workspaces'), ondelete='CASCADE'),
    sa.PrimaryKeyConstraint('id', name=op.f('pk_content_rules'))
    )
    with op.batch_alter_table('content_rules', schema=None) as batch_op:
        batch_op.create_index(batch_op.f('ix_content_rules_workspace_id'), ['workspace_id'], unique=False)

    op.create_table('prices',
    sa.Column('id', sa.BigInteger().with_variant(sa.Integer(), 'sqlite'), nullable=False),
    sa.Column('workspace_id', sa.BigInteger().with_variant(sa.Integer(), 'sqlite'), nullable=False),
    sa.Column('provider', sa.String(length=32), nullable=False),
    sa.Column('prefix', sa.String(length=8), nullable=False),
    sa.Column('price_per_part', sa.Numeric(precision=12, scale=5), nullable=False),
    sa.Column('currency', sa.String(length=3), nullable=False),
    sa.Column('updated_at', sa.DateTime(timezone=True), nullable=False),
    sa.ForeignKeyConstraint(['workspace_id'], ['workspaces.id'], name=op.f('fk_prices_workspace_id_workspaces'), ondelete='CASCADE'),
    sa.PrimaryKeyConstraint('id', name=op.f('pk_prices'))
    )
    with op.batch_alter_table('prices', schema=None) as batch_op:
        batch_op.create_index('uq_prices_ws_provider_prefix', ['workspace_id', 'provider', 'prefix'], unique=True)

    op.create_table('provider_accounts',
    sa.Column('id', sa.BigInteger().with_variant(sa.Integer(), 'sqlite'), nullable=False),
    sa.Column('workspace_id', sa.BigInteger().with_variant(sa.Integer(), 'sqlite'), nullable=False),
    sa.Column('provider', sa.String(length=32), nullable=False),
    sa.Column('name', sa.String(length=200), nullable=False),
    sa.Column('settings_encrypted', sa.Text(), nullable=False),
    sa.Column('webhook_token', sa.String(length=64), nullable=False),
    sa.Column('is_default', sa.Boolean(), nullable=False),
    sa.Column('created_at', sa.DateTime(timezone=True), nullable=False),
    sa.ForeignKeyConstraint(['workspace_id'], ['workspaces.id'], name=op.f('fk_provider_accounts_workspace_id_workspaces'), ondelete='CASCADE'),
    sa.PrimaryKeyConstraint('id', name=op.f('pk_provider_accounts')),
    sa.UniqueConstraint('webhook_token', name=op.f('uq_provider_accounts_webhook_token'))
    )
    with op.batch_alter_table('provider_accounts', schema=None) as batch_op:
        batch_op.create_index(batch_op.f('ix_provider_accounts_workspace_id'), ['workspace_id'], unique=False)

    op.create_table('campaign_variants',
    sa.Column('id', sa.BigInteger().with_variant(sa.Integer(), 'sqlite'), nullable=False),
    sa.Column('campaign_id', sa.BigInteger().with_variant(sa.Integer(), 'sqlite'), nullable=False),
    sa.Column('name', sa.String(length=40), nullable=False),
    sa.Column('ratio', sa.Integer(), nullable=False),
    sa.Column('text', sa.Text(), nullable=False),
    sa.Column('languages', sa.JSON().with_variant(postgresql.JSONB(astext_type=sa.Text()), 'postgresql'), nullable=False),
    sa.Column('fallback_language', sa.String(length=16), nullable=True),
    sa.ForeignKeyConstraint(['campaign_id'], ['campaigns.id'], name=op.f('fk_campaign_variants_campaign_id_campaigns'), ondelete='CASCADE'),
    sa.PrimaryKeyConstraint('id', name=op.f('pk_campaign_variants'))
    )
    with op.batch_alter_table('campaign_variants', schema=None) as batch_op:
        batch_op.create_index(batch_op.f('ix_campaign_variants_campaign_id'), ['campaign_id'], unique=False)

    op.create_table('messages',
    sa.Column('id', sa.BigInteger().with_variant(sa.Integer(), 'sqlite'), nullable=False),
    sa.Column('workspace_id', sa.BigInteger().with_variant(sa.Integer(), 'sqlite'), nullable=False),
    sa.Column('campaign_id', sa.BigInteger().with_variant(sa.Integer(), 'sqlite'), nullable=True),
    sa.Column('variant_id', sa.BigInteger().with_variant(sa.Integer(), 'sqlite'), nullable=True),
    sa.Column('contact_id', sa.BigInteger().with_variant(sa.Integer(), 'sqlite'), nullable=True),
    sa.Column('phone', sa.String(length=16), nullable=False),
    sa.Column('sender', sa.String(length=16), nullable=True),
    sa.Column('text', sa.Text(), nullable=False),
    sa.Column('encoding', sa.String(length=8), nullable=False),
    sa.Column('parts', sa.Integer(), nullable=False),
    sa.Column('status', sa.String(length=16), nullable=False),
    sa.Column('reason', sa.Text(), nullable=True),
    sa.Column('idempotency_key', sa.String(length=80), nullable=False),
    sa.Column('provider', sa.String(length=32), nullable=True),
    sa.Column('provider_message_id', sa.String(length=100), nullable=True),
    sa.Column('claim', sa.String(length=32), nullable=True),
    sa.Column('claimed_until', sa.DateTime(timezone=True), nullable=True),
    sa.Column('send_after', sa.DateTime(timezone=True), nullable=True),
    sa.Column('price_per_part', sa.Numeric(precision=12, scale=5), nullable=True),
    sa.Column('cost', sa.Numeric(precision=12, scale=5), nullable=True),
    sa.Column('currency', sa.String(length=3), nullable=True),
    sa.Column('error_code', sa.String(length=32), nullable=True),
    sa.Column('created_at', sa.DateTime(timezone=True), nullable=False),
    sa.Column('sent_at', sa.DateTime(timezone=True), nullable=True),
    sa.Column('status_at', sa.DateTime(timezone=True), nullable=True),
    sa.ForeignKeyConstraint(['campaign_id'], ['campaigns.id'], name=op.f('fk_messages_campaign_id_campaigns'), ondelete='CASCADE'),
    sa.ForeignKeyConstraint(['workspace_id'], ['workspaces.id'], name=op.f('fk_messages_workspace_id_workspaces'), ondelete='CASCADE'),
    sa.PrimaryKeyConstraint('id', name=op.f('pk_messages')),
    sa.UniqueConstraint('idempotency_key', name=op.f('uq_messages_idempotency_key'))
    )
    with op.batch_alter_table('messages', schema=None) as batch_op:
        batch_op.create_index('ix_messages_contact', ['contact_id', 'created_at'], unique=False)
        batch_op.create_index('ix_messages_dispatch', ['campaign_id', 'status', 'id'], unique=False)
        batch_op.create_index('ix_messages_provider_ref', ['provider', 'provider_message_id'], unique=False)
        batch_op.create_index('ix_messages_ws_created', ['workspace_id', 'created_at'], unique=False)

    op.create_table('message_events',
    sa.Column('id', sa.BigInteger().with_variant(sa.Integer(), 'sqlite'), nullable=False),
    sa.Column('message_id', sa.BigInteger().with_variant(sa.Integer(), 'sqlite'), nullable=False),
    sa.Column('status', sa.String(length=16), nullable=False),
    sa.Column('provider_status', sa.String(length=64), nullable=True),
    sa.Column('error_code', sa.String(length=32), nullable=True),
    sa.Column('at', sa.DateTime(timezone=True), nullable=False),
    sa.Column('detail', sa.Text(), nullable=True),
    sa.ForeignKeyConstraint(['message_id'], ['messages.id'], name=op.f('fk_message_events_message_id_messages'), ondelete='CASCADE'),
    sa.PrimaryKeyConstraint('id', name=op.f('pk_message_events'))
    )
    with op.batch_alter_table('message_events', schema=None) as batch_op:
        batch_op.create_index(batch_op.f('ix_message_events_message_id'), ['message_id'], unique=False)



def downgrade() -> None:
    op.drop_table('attribute_names')
    with op.batch_alter_table('message_events', schema=None) as batch_op:
        batch_op.drop_index(batch_op.f('ix_message_events_message_id'))

    op.drop_table('message_events')
    with op.batch_alter_table('messages', schema=None) as batch_op:
        batch_op.drop_index('ix_messages_ws_created')
        batch_op.drop_index('ix_messages_provider_ref')
        batch_op.drop_index('ix_messages_dispatch')
        batch_op.drop_index('ix_messages_contact')

    op.drop_table('messages')
    with op.batch_alter_table('campaign_variants', schema=None) as batch_op:
        batch_op.drop_index(batch_op.f('ix_campaign_variants_campaign_id'))

    op.drop_table('campaign_variants')
    with op.batch_alter_table('provider_accounts', schema=None) as batch_op:
        batch_op.drop_index(batch_op.f('ix_provider_accounts_workspace_id'))

    op.drop_table('provider_accounts')
    with op.batch_alter_table('prices', schema=None) as batch_op:
        batch_op.drop_index('uq_prices_ws_provider_prefix')

    op.drop_table('prices')
    with op.batch_alter_table('content_rules', schema=None) as batch_op:
        batch_op.drop_index(batch_op.f('ix_content_rules_workspace_id'))

    op.drop_table('content_rules')
    with op.batch_alter_table('campaigns', schema=None) as batch_op:
        batch_op.drop_index('ix_campaigns_ws_status')

    op.drop_table('campaigns')
