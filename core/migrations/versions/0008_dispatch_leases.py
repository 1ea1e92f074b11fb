"""dispatch leases: a lane leases a batch of a campaign's messages as one row, not by updating each message

Claiming 500 messages wrote 500 rows under SQLite's one write lock (about 8 µs a message, and the lanes waited
for the lock behind the delivery reports); a lease is one row.

Revision ID: 0008
Revises: 0007
Create Date: 2026-11-26 19:30:00.000000
"""

from alembic import op
import sqlalchemy as sa
from sqlalchemy.dialects import postgresql

revision = '0008'
down_revision = '0007'
branch_labels = None
depends_on = None

Json = sa.JSON().with_variant(postgresql.JSONB(astext_type=sa.Text()), 'postgresql')
BigId = sa.BigInteger().with_variant(sa.Integer(), 'sqlite')


def upgrade() -> None:
    op.create_table(
        'dispatch_leases',
        sa.Column('token', sa.String(length=32), nullable=False),
        sa.Column('campaign_id', BigId, nullable=False),
        sa.Column('lo', BigId, nullable=False),
        sa.Column('hi', BigId, nullable=False),
        sa.Column('ids', Json, nullable=False),
        sa.Column('until', sa.DateTime(timezone=True), nullable=False),
        sa.ForeignKeyConstraint(['campaign_id'], ['campaigns.id'], name='fk_dispatch_leases_campaign_id_campaigns',
                                ondelete='CASCADE'),
        sa.PrimaryKeyConstraint('token', name='pk_dispatch_leases'),
    )
    op.create_index('ix_dispatch_leases_campaign_id', 'dispatch_leases', ['campaign_id'])


def downgrade() -> None:
    op.drop_index('ix_dispatch_leases_campaign_id', table_name='dispatch_leases')
    op.drop_table('dispatch_leases')
