"""IDs are UUIDs; a unique prefix of 8+ hex characters is accepted wherever an ID is."""
from __future__ import annotations

import re
from collections.abc import Collection
from typing import Any, TypeVar

from sqlmodel import Session, SQLModel, col, select

from .errors import InvalidInput, NotFound

T = TypeVar('T', bound=SQLModel)
PREFIX = re.compile(r'^[0-9a-f]{8,32}$')


def short(id_: str) -> str:
    return id_.replace('-', '')[:8]


def looks_like_id(ref: str) -> bool:
    return bool(PREFIX.match(ref.replace('-', '').lower()))


def load(session: Session, model: type[T], key: Any, what: str) -> T:
    """A row by its exact id (as events and links carry it): 'Which …?' for no id, NotFound when it is gone."""
    if not isinstance(key, str) or not key:
        raise InvalidInput(f'Which {what}?')
    row = session.get(model, key)
    if row is None:
        raise NotFound(f'That {what} no longer exists.')
    return row


def resolve(session: Session, model: type[T], ref: str, what: str, hidden: Collection[str] = ()) -> T:
    """Find a row by full id or unique id prefix; a clear error for none or several. Rows whose ids are `hidden`
    (for example private boards the user may not see) count as absent, so an ambiguity never betrays them."""
    ref = ref.strip().lower()
    found = session.get(model, ref)
    if found is not None and found.id not in hidden:  # type: ignore[attr-defined]
        return found
    compact = ref.replace('-', '')
    if not PREFIX.match(compact):
        raise NotFound(f'No {what} with id {ref!r}.')
    # hyphens sit at fixed places in a UUID: rebuild the canonical prefix
    canonical = '-'.join(filter(None, (compact[0:8], compact[8:12], compact[12:16], compact[16:20], compact[20:32])))
    query = select(model).where(col(model.id).startswith(canonical))  # type: ignore[attr-defined]
    if hidden:
        query = query.where(col(model.id).not_in(hidden))  # type: ignore[attr-defined]
    rows = session.exec(query.limit(6)).all()
    if not rows:
        raise NotFound(f'No {what} with id {ref!r}.')
    if len(rows) > 1:
        raise InvalidInput(f'The id prefix {ref!r} is ambiguous: it matches several {what}s. Use more characters.')
    return rows[0]
