"""gateway channels, identities, threads, turns, events and link codes

Revision ID: 0012
Revises: 0011
Create Date: 2026-11-30 15:08:16.003235
"""
from alembic import op
import sqlalchemy as sa
import sqlmodel


revision = '0012'
down_revision = '0011'
branch_labels = None
depends_on = None


def upgrade() -> None:

    op.create_table('gatewaylinkcode',
    sa.Column('user_id', sqlmodel.sql.sqltypes.AutoString(length=36), nullable=False),
    sa.Column('code_hash', sqlmodel.sql.sqltypes.AutoString(length=64), nullable=False),
    sa.Column('expires_at', sqlmodel.sql.sqltypes.UTCDateTime(), nullable=False),
    sa.ForeignKeyConstraint(['user_id'], ['user.id'], ondelete='CASCADE'),
    sa.PrimaryKeyConstraint('user_id'),
    sa.UniqueConstraint('code_hash')
    )
    op.create_table('gatewaychannel',
    sa.Column('id', sqlmodel.sql.sqltypes.AutoString(length=36), nullable=False),
    sa.Column('platform', sqlmodel.sql.sqltypes.AutoString(length=16), nullable=False),
    sa.Column('name', sqlmodel.sql.sqltypes.AutoString(length=80), nullable=False),
    sa.Column('signing_secret', sa.Text(), nullable=False),
    sa.Column('bot_token', sa.Text(), nullable=False),
    sa.Column('board_id', sqlmodel.sql.sqltypes.AutoString(length=36), nullable=False),
    sa.Column('worktree_id', sqlmodel.sql.sqltypes.AutoString(length=36), nullable=False),
    sa.Column('runtime', sqlmodel.sql.sqltypes.AutoString(length=32), nullable=False),
    sa.Column('env', sa.JSON(), nullable=False),
    sa.Column('mcp_server_ids', sa.JSON(), nullable=False),
    sa.Column('api_base', sqlmodel.sql.sqltypes.AutoString(length=300), nullable=False),
    sa.Column('enabled', sa.Boolean(), nullable=False),
    sa.Column('created_by', sqlmodel.sql.sqltypes.AutoString(length=36), nullable=False),
    sa.Column('created_at', sqlmodel.sql.sqltypes.UTCDateTime(), nullable=False),
    sa.Column('updated_at', sqlmodel.sql.sqltypes.UTCDateTime(), nullable=False),
    sa.ForeignKeyConstraint(['board_id'], ['board.id'], ondelete='CASCADE'),
    sa.ForeignKeyConstraint(['created_by'], ['user.id'], ),
    sa.ForeignKeyConstraint(['worktree_id'], ['worktree.id'], ondelete='CASCADE'),
    sa.PrimaryKeyConstraint('id')
    )
    op.create_table('gatewayevent',
    sa.Column('channel_id', sqlmodel.sql.sqltypes.AutoString(length=36), nullable=False),
    sa.Column('event_id', sqlmodel.sql.sqltypes.AutoString(length=128), nullable=False),
    sa.Column('received_at', sqlmodel.sql.sqltypes.UTCDateTime(), nullable=False),
    sa.ForeignKeyConstraint(['channel_id'], ['gatewaychannel.id'], ondelete='CASCADE'),
    sa.PrimaryKeyConstraint('channel_id', 'event_id')
    )
    with op.batch_alter_table('gatewayevent', schema=None) as batch_op:
        batch_op.create_index(batch_op.f('ix_gatewayevent_received_at'), ['received_at'], unique=False)

    op.create_table('gatewayidentity',
    sa.Column('id', sqlmodel.sql.sqltypes.AutoString(length=36), nullable=False),
    sa.Column('channel_id', sqlmodel.sql.sqltypes.AutoString(length=36), nullable=False),
    sa.Column('external_id', sqlmodel.sql.sqltypes.AutoString(length=64), nullable=False),
    sa.Column('user_id', sqlmodel.sql.sqltypes.AutoString(length=36), nullable=False),
    sa.Column('created_at', sqlmodel.sql.sqltypes.UTCDateTime(), nullable=False),
    sa.ForeignKeyConstraint(['channel_id'], ['gatewaychannel.id'], ondelete='CASCADE'),
    sa.ForeignKeyConstraint(['user_id'], ['user.id'], ondelete='CASCADE'),
    sa.PrimaryKeyConstraint('id'),
    sa.UniqueConstraint('channel_id', 'external_id')
    )
    with op.batch_alter_table('gatewayidentity', schema=None) as batch_op:
        batch_op.create_index(batch_op.f('ix_gatewayidentity_user_id'), ['user_id'], unique=False)

    op.create_table('gatewaythread',
    sa.Column('id', sqlmodel.sql.sqltypes.AutoString(length=36), nullable=False),
    sa.Column('channel_id', sqlmodel.sql.sqltypes.AutoString(length=36), nullable=False),
    sa.Column('external_channel', sqlmodel.sql.sqltypes.AutoString(length=64), nullable=False),
    sa.Column('thread_ts', sqlmodel.sql.sqltypes.AutoString(length=64), nullable=False),
    sa.Column('session_id', sqlmodel.sql.sqltypes.AutoString(length=36), nullable=False),
    sa.Column('external_user', sqlmodel.sql.sqltypes.AutoString(length=64), nullable=False),
    sa.Column('created_at', sqlmodel.sql.sqltypes.UTCDateTime(), nullable=False),
    sa.ForeignKeyConstraint(['channel_id'], ['gatewaychannel.id'], ondelete='CASCADE'),
    sa.ForeignKeyConstraint(['session_id'], ['agentsession.id'], ondelete='CASCADE'),
    sa.PrimaryKeyConstraint('id'),
    sa.UniqueConstraint('channel_id', 'thread_ts'),
    sa.UniqueConstraint('session_id')
    )
    op.create_table('gatewayturn',
    sa.Column('turn_id', sqlmodel.sql.sqltypes.AutoString(length=36), nullable=False),
    sa.Column('from_chat', sa.Boolean(), nullable=False),
    sa.Column('status_ts', sqlmodel.sql.sqltypes.AutoString(length=64), nullable=True),
    sa.Column('reported_at', sqlmodel.sql.sqltypes.UTCDateTime(), nullable=True),
    sa.ForeignKeyConstraint(['turn_id'], ['sessionturn.id'], ondelete='CASCADE'),
    sa.PrimaryKeyConstraint('turn_id')
    )



def downgrade() -> None:

    op.drop_table('gatewayturn')
    op.drop_table('gatewaythread')
    with op.batch_alter_table('gatewayidentity', schema=None) as batch_op:
        batch_op.drop_index(batch_op.f('ix_gatewayidentity_user_id'))

    op.drop_table('gatewayidentity')
    with op.batch_alter_table('gatewayevent', schema=None) as batch_op:
        batch_op.drop_index(batch_op.f('ix_gatewayevent_received_at'))

    op.drop_table('gatewayevent')
    op.drop_table('gatewaychannel')
    op.drop_table('gatewaylinkcode')

