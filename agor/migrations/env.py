"""Alembic environment: the app passes its own connection in (see agor.db.migrate); the CLI uses the settings'
database (DATABASE_URL, else SQLite in AGOR_DATA_DIR)."""
from alembic import context
from sqlmodel import SQLModel

from agor import models  # noqa: F401  (registers the tables)
from agor.config import load_settings
from agor.db import make_engine

target_metadata = SQLModel.metadata


def run() -> None:
    connection = context.config.attributes.get('connection')
    if connection is not None:
        _run_with(connection)
        return
    engine = make_engine(load_settings().database_url)
    with engine.begin() as conn:
        _run_with(conn)


def _run_with(connection) -> None:
    context.configure(connection=connection, target_metadata=target_metadata, render_as_batch=True,
                      compare_type=True)
    with context.begin_transaction():
        context.run_migrations()


run()
