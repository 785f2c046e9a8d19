from __future__ import annotations

from datetime import datetime

from sqlalchemy import Column, Text, UniqueConstraint
from sqlmodel import Field, SQLModel

from .base import id_column, ref, utcnow


class UserSecret(SQLModel, table=True):
    """A user's secret, sealed by `agor.secret_box` (associated data: user id, kind, name). `kind` is 'env' (an
    environment variable, scope 'global': every session and terminal of the user, or 'session': only sessions that
    opted in) or 'key' (a model provider's API key, delivered as the variable `name`)."""
    __table_args__ = (UniqueConstraint('user_id', 'kind', 'name'),)
    id: str = id_column()
    user_id: str = ref('user', ondelete='CASCADE', index=True)
    kind: str = Field(max_length=8)
    name: str = Field(max_length=128)
    scope: str = Field(default='global', max_length=8)
    value: str = Field(sa_column=Column(Text, nullable=False))
    updated_at: datetime = Field(default_factory=utcnow)


class SessionEnvSelection(SQLModel, table=True):
    """A Session-scoped variable of its creator that a session opted into."""
    session_id: str = ref('agentsession', ondelete='CASCADE', primary_key=True)
    name: str = Field(primary_key=True, max_length=128)


class SecretCheck(SQLModel, table=True):
    """One value sealed with the instance key: a different master secret fails to open it."""
    id: int = Field(default=1, primary_key=True)
    value: str = Field(sa_column=Column(Text, nullable=False))
