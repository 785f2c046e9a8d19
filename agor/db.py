"""Database engine, one-transaction-per-action helper, and the Alembic migration runner."""
from __future__ import annotations

import asyncio
import threading
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

from alembic import command
from alembic.config import Config
from sqlalchemy import event
from sqlalchemy.dialects import postgresql, sqlite
from sqlalchemy.engine import Engine
from sqlmodel import Session, create_engine

from . import events

MIGRATIONS_DIR = Path(__file__).parent / 'migrations'

_engine: Engine | None = None


def init(database_url: str, *, migrate_schema: bool = True) -> Engine:
    """Create the engine for this process and bring the schema to the newest migration."""
    global _engine
    if _engine is not None:
        _engine.dispose()
    _engine = make_engine(database_url)
    if migrate_schema:
        migrate(_engine)
    return _engine


def make_engine(database_url: str) -> Engine:
    if database_url.startswith('postgresql://'):
        database_url = 'postgresql+psycopg://' + database_url.removeprefix('postgresql://')
    if database_url.startswith('sqlite'):
        engine = create_engine(database_url, connect_args={'check_same_thread': False, 'timeout': 30})
        event.listen(engine, 'connect', _sqlite_pragmas)
        return engine
    return create_engine(database_url, pool_pre_ping=True)


def _sqlite_pragmas(dbapi_connection: Any, _record: Any) -> None:
    cursor = dbapi_connection.cursor()
    cursor.execute('PRAGMA foreign_keys=ON')
    cursor.execute('PRAGMA journal_mode=WAL')
    cursor.execute('PRAGMA synchronous=NORMAL')
    cursor.close()


def engine() -> Engine:
    if _engine is None:
        raise RuntimeError('agor.db.init() has not been called')
    return _engine


def migrate(target: Engine) -> None:
    config = Config()
    config.set_main_option('script_location', str(MIGRATIONS_DIR))
    with target.begin() as connection:
        config.attributes['connection'] = connection
        command.upgrade(config, 'head')


_commit_lock = threading.Lock()


class OnEventLoop(RuntimeError):
    """A blocking call was made on the thread of the event loop that serves the pages."""


_serving_loop: asyncio.AbstractEventLoop | None = None


def guard_loop(loop: asyncio.AbstractEventLoop | None) -> None:
    """From now on database and git calls made on `loop` (the one serving the pages) raise OnEventLoop; the app arms
    this once its start-up work is done, before it serves anything."""
    global _serving_loop
    _serving_loop = loop


def refuse_on_event_loop(what: str) -> None:
    """Database and git calls never run on the serving loop (they would stall every page of the process): UI code
    reaches services through `components.act`, other async code through `asyncio.to_thread`."""
    if _serving_loop is None:
        return
    try:
        running = asyncio.get_running_loop()
    except RuntimeError:
        return
    if running is _serving_loop:
        raise OnEventLoop(f'{what} on the event loop thread: call it through components.act.act or '
                          'asyncio.to_thread')


@contextmanager
def transaction() -> Iterator[Session]:
    """One user action = one transaction. Events queued with `emit_after_commit` go out only if it commits,
    in commit order (the lock keeps two racing writers from publishing in the opposite order)."""
    refuse_on_event_loop('a database transaction')
    with Session(engine(), expire_on_commit=False) as session:
        session.info['events'] = []
        session.begin()
        try:
            yield session
            session.flush()
        except BaseException:
            session.rollback()
            raise
        with _commit_lock:
            session.commit()
            for topic, payload in session.info.pop('events'):
                events.bus.publish(topic, payload)


@contextmanager
def read() -> Iterator[Session]:
    """Reads that all see one state of the database, never part of a commit made meanwhile (a session's status from
    before a claim and its queue from after it)."""
    refuse_on_event_loop('a database read')
    with Session(engine(), expire_on_commit=False) as session:
        if session.get_bind().dialect.name == 'sqlite':  # pysqlite begins a transaction only before a write
            session.connection().exec_driver_sql('BEGIN')
        else:  # PostgreSQL's default (read committed) gives each statement its own snapshot
            session.connection(execution_options={'isolation_level': 'REPEATABLE READ'})
        yield session


def emit_after_commit(session: Session, topic: str, payload: dict) -> None:
    session.info['events'].append((topic, payload))


def put(session: Session, row: Any, *, unique: tuple[str, ...], update: tuple[str, ...] = ()) -> None:
    """Insert `row`, or, when a row with the same `unique` columns exists, set its `update` columns from `row` (none:
    leave it). One statement, so two racing writers (a panel acknowledged twice at once) both succeed."""
    insert = {'sqlite': sqlite.insert, 'postgresql': postgresql.insert}[session.get_bind().dialect.name]
    values = row.model_dump()
    statement = insert(type(row)).values(**values)
    if update:
        statement = statement.on_conflict_do_update(index_elements=list(unique),
                                                    set_={name: values[name] for name in update})
    else:
        statement = statement.on_conflict_do_nothing(index_elements=list(unique))
    session.execute(statement)
