"""transactional: message templates, API idempotency keys, transactional columns on messages

Revision ID: 0004
Revises: 0003
Create Date: 2026-11-26 06:20:00.000000
"""

from alembic import op
import sqlalchemy as sa
from sqlalchemy.dialects import postgresql

revision = '0004'
down_revision = '0003'
branch_labels = None
depends_on = None

BigId = sa.BigInteger().with_variant(sa.Integer(), 'sqlite')
Json = sa.JSON().with_variant(postgresql.JSONB(astext_type=sa.Text()), 'postgresql')


def upgrade() -> None:
    op.create_table('message_templates',
    sa.Column('id', BigId, nullable=False),
    sa.Column('workspace_id', BigId, nullable=False),
    sa.Column('name', sa.String(length=200), nullable=False),
    sa.Column('text', sa.Text(), nullable=False),
    sa.Column('languages', Json, nullable=False),
    sa.Column('fallback_language', sa.String(length=16), nullable=True),
    sa.Column('sender_id', sa.String(length=16), nullable=True),
    sa.Column('consent_category', sa.String(length=64), nullable=True),
    sa.Column('max_parts', sa.Integer(), nullable=False),
    sa.Column('tags', Json, nullable=False),
    sa.Column('created_at', sa.DateTime(timezone=True), nullable=False),
    sa.Column('updated_at', sa.DateTime(timezone=True), nullable=False),
    sa.ForeignKeyConstraint(['workspace_id'], ['workspaces.id'], name=op.f('fk_message_templates_workspace_id_workspaces'), ondelete='CASCADE'),
    sa.PrimaryKeyConstraint('id', name=op.f('pk_message_templates')),
    sa.UniqueConstraint('workspace_id', 'name', name=op.f('uq_message_templates_workspace_id_name'))
    )
    op.create_table('api_idempotency',
    sa.Column('workspace_id', BigId, nullable=False),
    sa.Column('key', sa.String(length=255), nullable=False),
    sa.Column('body_hash', sa.String(length=64), nullable=False),
    sa.Column('response', Json, nullable=True),
    sa.Column('created_at', sa.DateTime(timezone=True), nullable=False),
    sa.ForeignKeyConstraint(['workspace_id'], ['workspaces.id'], name=op.f('fk_api_idempotency_workspace_id_workspaces'), ondelete='CASCADE'),
    sa.PrimaryKeyConstraint('workspace_id', 'key', name=op.f('pk_api_idempotency'))
    )
    with op.batch_alter_table('api_idempotency', schema=None) as batch_op:
        batch_op.create_index(batch_op.f('ix_api_idempotency_created_at'), ['created_at'], unique=False)

    with op.batch_alter_table('messages', schema=None) as batch_op:
        batch_op.add_column(sa.Column('template_id', BigId, nullable=True))
        batch_op.add_column(sa.Column('reference', sa.String(length=200), nullable=True))
        batch_op.add_column(sa.Column('tags', Json, nullable=True))
        batch_op.add_column(sa.Column('validity_s', sa.Integer(), nullable=True))
        batch_op.add_column(sa.Column('consent_category', sa.String(length=64), nullable=True))
        batch_op.add_column(sa.Column('source', sa.String(length=32), nullable=True))
        batch_op.create_index('ix_messages_ws_reference', ['workspace_id', 'reference'], unique=False)


def downgrade() -> None:
    with op.batch_alter_table('messages', schema=None) as batch_op:
        batch_op.drop_index('ix_messages_ws_reference')
        batch_op.drop_column('source')
        batch_op.drop_column('consent_category')
        batch_op.drop_column('validity_s')
        batch_op.drop_column('tags')
        batch_op.drop_column('reference')
        batch_op.drop_column('template_id')

    with op.batch_alter_table('api_idempotency', schema=None) as batch_op:
        batch_op.drop_index(batch_op.f('ix_api_idempotency_created_at'))
    op.drop_table('api_idempotency')
    op.drop_table('message_templates')
