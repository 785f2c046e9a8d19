"""Write the next migration by comparing the models with a database migrated to head.

    .venv/bin/python -m agor.migrations.new "add comments"
"""
from __future__ import annotations

import sys
import tempfile
from pathlib import Path

from alembic import command
from alembic.config import Config
from alembic.script import ScriptDirectory

from agor import db, models  # noqa: F401  (importing models registers the tables)


def main(message: str) -> None:
    config = Config()
    config.set_main_option('script_location', str(db.MIGRATIONS_DIR))
    head = ScriptDirectory.from_config(config).get_current_head()
    rev_id = f'{int(head or 0) + 1:04d}'
    with tempfile.TemporaryDirectory() as tmp:
        engine = db.make_engine(f'sqlite:///{Path(tmp) / "head.db"}')
        db.migrate(engine)
        with engine.begin() as connection:
            config.attributes['connection'] = connection
            command.revision(config, message=message, autogenerate=True, rev_id=rev_id)
        engine.dispose()


if __name__ == '__main__':
    main(' '.join(sys.argv[1:]) or 'schema change')
