import uuid
from datetime import UTC, datetime
from typing import Any

from sqlmodel import Field

ID_LENGTH = 36  # a UUID in text


def new_id() -> str:
    return str(uuid.uuid4())


def utcnow() -> datetime:
    return datetime.now(UTC)


def id_column() -> Any:
    """The primary key every table has: a new UUID in text."""
    return Field(default_factory=new_id, primary_key=True, max_length=ID_LENGTH)


def ref(table: str, **column: Any) -> Any:
    """A column that holds the id of a row of `table` (its foreign key); `column` adds ondelete, index, default..."""
    return Field(foreign_key=f'{table}.id', max_length=ID_LENGTH, **column)
