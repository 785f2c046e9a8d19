"""mcp client per redirect uri

One OAuth client row per (server, issuer, redirect URI) instead of per (server, issuer): a member who opens the app
by another address registers a client of their own instead of rewriting the one other users' grants refresh with.

Revision ID: 0014
Revises: 0013
Create Date: 2026-11-30 19:40:00
"""
import sqlalchemy as sa
from alembic import op

revision = '0014'
down_revision = '0013'
branch_labels = None
depends_on = None

OLD = ('server_id', 'issuer')
NEW = ('server_id', 'issuer', 'redirect_uri')
NAME = 'uq_mcpclient_server_issuer_redirect'
KEPT = ('mcpgrant', 'mcppendingflow')  # rows that point at mcpclient


def upgrade() -> None:
    _swap('mcpclient_server_id_issuer_key', NAME, NEW)  # 0013's unnamed one: PostgreSQL's name for it


def downgrade() -> None:
    _swap(NAME, 'mcpclient_server_id_issuer_key', OLD)


def _swap(old_name: str, new_name: str, columns: tuple[str, ...]) -> None:
    """Replace mcpclient's unique constraint. SQLite rebuilds the table, and dropping the old one with foreign keys
    on deletes the rows that point at it (their ON DELETE CASCADE): those are kept aside and put back."""
    bind = op.get_bind()
    if bind.dialect.name != 'sqlite':
        op.drop_constraint(old_name, 'mcpclient', type_='unique')
        op.create_unique_constraint(new_name, 'mcpclient', list(columns))
        return
    named = {c['name'] for c in sa.inspect(bind).get_unique_constraints('mcpclient')}
    unnamed = 'uq_mcpclient_server_id'  # SQLite keeps 0013's without a name: the convention below names it so
    for table in KEPT:
        op.execute(f'CREATE TEMP TABLE kept_{table} AS SELECT * FROM {table}')
    with op.batch_alter_table('mcpclient', recreate='always',
                              naming_convention={'uq': 'uq_%(table_name)s_%(column_0_name)s'}) as batch:
        batch.drop_constraint(old_name if old_name in named else unnamed, type_='unique')
        batch.create_unique_constraint(new_name, list(columns))
    for table in KEPT:
        op.execute(f'INSERT OR IGNORE INTO {table} SELECT * FROM kept_{table}')
        op.execute(f'DROP TABLE kept_{table}')
