"""links: short-link domains, short links and clicks

Revision ID: 0002
Revises: 0001
Create Date: 2026-11-26 07:00:00.000000
"""

from alembic import op
import sqlalchemy as sa

revision = '0002'
down_revision = '0001'
branch_labels = None
depends_on = None

BigId = sa.BigInteger().with_variant(sa.Integer(), 'sqlite')


def upgrade() -> None:
    op.create_table('link_domains',
    sa.Column('id', BigId, nullable=False),
    sa.Column('workspace_id', BigId, nullable=False),
    sa.Column('host', sa.String(length=253), nullable=False),
    sa.Column('scheme', sa.String(length=8), nullable=False),
    sa.Column('message_limit', sa.BigInteger(), nullable=True),
    sa.Column('messages_used', sa.BigInteger(), nullable=False),
    sa.Column('active', sa.Boolean(), nullable=False),
    sa.Column('created_at', sa.DateTime(timezone=True), nullable=False),
    sa.ForeignKeyConstraint(['workspace_id'], ['workspaces.id'], name=op.f('fk_link_domains_workspace_id_workspaces'), ondelete='CASCADE'),
    sa.PrimaryKeyConstraint('id', name=op.f('pk_link_domains')),
    sa.UniqueConstraint('workspace_id', 'host', name=op.f('uq_link_domains_workspace_id_host'))
    )
    op.create_table('short_links',
    sa.Column('id', BigId, nullable=False),
    sa.Column('token', sa.String(length=16), nullable=False),
    sa.Column('workspace_id', BigId, nullable=False),
    sa.Column('domain_id', BigId, nullable=True),
    sa.Column('suffix', sa.String(length=40), nullable=True),
    sa.Column('target_url', sa.Text(), nullable=False),
    sa.Column('contact_id', sa.BigInteger(), nullable=True),
    sa.Column('message_id', sa.BigInteger(), nullable=True),
    sa.Column('campaign_id', sa.BigInteger(), nullable=True),
    sa.Column('variant_id', sa.BigInteger(), nullable=True),
    sa.Column('identity_mode', sa.String(length=8), nullable=False),
    sa.Column('expires_at', sa.DateTime(timezone=True), nullable=False),
    sa.Column('created_at', sa.DateTime(timezone=True), nullable=False),
    sa.ForeignKeyConstraint(['domain_id'], ['link_domains.id'], name=op.f('fk_short_links_domain_id_link_domains'), ondelete='SET NULL'),
    sa.ForeignKeyConstraint(['workspace_id'], ['workspaces.id'], name=op.f('fk_short_links_workspace_id_workspaces'), ondelete='CASCADE'),
    sa.PrimaryKeyConstraint('id', name=op.f('pk_short_links')),
    sa.UniqueConstraint('token', name=op.f('uq_short_links_token'))
    )
    with op.batch_alter_table('short_links', schema=None) as batch_op:
        batch_op.create_index('ix_short_links_campaign', ['campaign_id'], unique=False)
        batch_op.create_index('ix_short_links_ws_domain_suffix', ['workspace_id', 'domain_id', 'suffix'], unique=False)

    op.create_table('clicks',
    sa.Column('id', BigId, nullable=False),
    sa.Column('workspace_id', BigId, nullable=False),
    sa.Column('link_id', BigId, nullable=False),
    sa.Column('contact_id', sa.BigInteger(), nullable=True),
    sa.Column('campaign_id', sa.BigInteger(), nullable=True),
    sa.Column('message_id', sa.BigInteger(), nullable=True),
    sa.Column('variant_id', sa.BigInteger(), nullable=True),
    sa.Column('at', sa.DateTime(timezone=True), nullable=False),
    sa.Column('user_agent', sa.String(length=255), nullable=True),
    sa.Column('is_bot', sa.Boolean(), nullable=False),
    sa.Column('identity_token', sa.String(length=32), nullable=True),
    sa.Column('stream_id', sa.String(length=32), nullable=False),
    sa.ForeignKeyConstraint(['link_id'], ['short_links.id'], name=op.f('fk_clicks_link_id_short_links'), ondelete='CASCADE'),
    sa.ForeignKeyConstraint(['workspace_id'], ['workspaces.id'], name=op.f('fk_clicks_workspace_id_workspaces'), ondelete='CASCADE'),
    sa.PrimaryKeyConstraint('id', name=op.f('pk_clicks')),
    sa.UniqueConstraint('stream_id', name=op.f('uq_clicks_stream_id'))
    )
    with op.batch_alter_table('clicks', schema=None) as batch_op:
        batch_op.create_index('ix_clicks_campaign', ['campaign_id', 'is_bot', 'contact_id'], unique=False)
        batch_op.create_index('ix_clicks_identity', ['identity_token'], unique=False)
        batch_op.create_index('ix_clicks_link', ['link_id', 'is_bot'], unique=False)
        batch_op.create_index('ix_clicks_ws_contact', ['workspace_id', 'contact_id'], unique=False)


def downgrade() -> None:
    with op.batch_alter_table('clicks', schema=None) as batch_op:
        batch_op.drop_index('ix_clicks_ws_contact')
        batch_op.drop_index('ix_clicks_link')
        batch_op.drop_index('ix_clicks_identity')
        batch_op.drop_index('ix_clicks_campaign')

    op.drop_table('clicks')
    with op.batch_alter_table('short_links', schema=None) as batch_op:
        batch_op.drop_index('ix_short_links_ws_domain_suffix')
        batch_op.drop_index('ix_short_links_campaign')

    op.drop_table('short_links')
    op.drop_table('link_domains')
