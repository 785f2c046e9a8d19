from alembic.autogenerate import compare_metadata
from alembic.migration import MigrationContext
from sqlalchemy.engine import Engine
from sqlmodel import SQLModel

from agor import db, models  # noqa: F401  (importing models registers the tables)


def schema_diff(engine: Engine) -> list:
    """What Alembic autogenerate would change to make the migrated database match the models (empty = in sync)."""
    with engine.connect() as connection:
        return compare_metadata(MigrationContext.configure(connection), SQLModel.metadata)


def test_migrated_sqlite_schema_matches_the_models(tmp_path):
    engine = db.make_engine('sqlite:///' + str(tmp_path / 'x.db'))
    try:
        db.migrate(engine)
        assert schema_diff(engine) == []
    finally:
        engine.dispose()
