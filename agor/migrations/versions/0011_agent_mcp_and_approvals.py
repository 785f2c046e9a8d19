"""the app's MCP server for its agents: approvals, attention reasons, comments by a user's agent

Revision ID: 0011
Revises: 0008
Create Date: 2026-11-30 15:20:00
"""
from alembic import op
import sqlalchemy as sa
import sqlmodel


revision = '0011'
down_revision = '0008'
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.create_table('approval',
    sa.Column('id', sqlmodel.sql.sqltypes.AutoString(length=36), nullable=False),
    sa.Column('session_id', sqlmodel.sql.sqltypes.AutoString(length=36), nullable=False),
    sa.Column('turn_id', sqlmodel.sql.sqltypes.AutoString(length=36), nullable=True),
    sa.Column('tool', sqlmodel.sql.sqltypes.AutoString(length=200), nullable=False),
    sa.Column('input', sa.JSON(), nullable=False),
    sa.Column('status', sqlmodel.sql.sqltypes.AutoString(length=16), nullable=False),
    sa.Column('decided_by', sqlmodel.sql.sqltypes.AutoString(length=36), nullable=True),
    sa.Column('decided_at', sqlmodel.sql.sqltypes.UTCDateTime(), nullable=True),
    sa.Column('message', sa.Text(), nullable=True),
    sa.Column('created_at', sqlmodel.sql.sqltypes.UTCDateTime(), nullable=False),
    sa.Column('expires_at', sqlmodel.sql.sqltypes.UTCDateTime(), nullable=False),
    sa.ForeignKeyConstraint(['decided_by'], ['user.id'], ondelete='SET NULL'),
    sa.ForeignKeyConstraint(['session_id'], ['agentsession.id'], ondelete='CASCADE'),
    sa.PrimaryKeyConstraint('id')
    )
    with op.batch_alter_table('approval', schema=None) as batch_op:
        batch_op.create_index(batch_op.f('ix_approval_session_id'), ['session_id'], unique=False)
        batch_op.create_index(batch_op.f('ix_approval_status'), ['status'], unique=False)
    with op.batch_alter_table('agentsession', schema=None) as batch_op:
        batch_op.add_column(sa.Column('attention_reason', sqlmodel.sql.sqltypes.AutoString(length=300),
                                      nullable=True))
    with op.batch_alter_table('comment', schema=None) as batch_op:
        batch_op.add_column(sa.Column('agent_session_id', sqlmodel.sql.sqltypes.AutoString(length=36), nullable=True))


def downgrade() -> None:
    with op.batch_alter_table('comment', schema=None) as batch_op:
        batch_op.drop_column('agent_session_id')
    with op.batch_alter_table('agentsession', schema=None) as batch_op:
        batch_op.drop_column('attention_reason')
    with op.batch_alter_table('approval', schema=None) as batch_op:
        batch_op.drop_index(batch_op.f('ix_approval_status'))
        batch_op.drop_index(batch_op.f('ix_approval_session_id'))
    op.drop_table('approval')
