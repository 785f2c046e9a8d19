"""What each user sets for themselves: personal API keys, an uploaded avatar, and their defaults per agent runtime."""
from __future__ import annotations

from datetime import datetime

from sqlalchemy import JSON, Column, LargeBinary, UniqueConstraint
from sqlmodel import Field, SQLModel

from .base import id_column, ref, utcnow


class ApiKey(SQLModel, table=True):
    """A personal API key: the token is shown once; only its public `prefix` (to find it) and an HMAC of the whole
    token (agor.api_keys) are stored."""

    id: str = id_column()
    user_id: str = ref('user', ondelete='CASCADE', index=True)
    name: str = Field(max_length=80)
    prefix: str = Field(unique=True, max_length=16)
    key_hash: str = Field(max_length=64)
    created_at: datetime = Field(default_factory=utcnow)
    last_used_at: datetime | None = None
    expires_at: datetime | None = None
    revoked_at: datetime | None = None


class UserAvatar(SQLModel, table=True):
    """An uploaded avatar (PNG, JPEG or WebP, checked by content). A new upload is a new row: its id is in the URL,
    so browsers may cache it for good."""

    id: str = id_column()
    user_id: str = ref('user', ondelete='CASCADE', unique=True)
    content_type: str = Field(max_length=16)
    data: bytes = Field(sa_column=Column(LargeBinary, nullable=False))
    created_at: datetime = Field(default_factory=utcnow)


class RuntimeSetting(SQLModel, table=True):
    """A user's defaults for one agent runtime: the model, permission mode and extra CLI arguments of the sessions
    they create (agor.runtime_settings)."""

    __table_args__ = (UniqueConstraint('user_id', 'runtime'),)

    id: str = id_column()
    user_id: str = ref('user', ondelete='CASCADE', index=True)
    runtime: str = Field(max_length=32)
    model: str | None = Field(default=None, max_length=120)
    permission_mode: str | None = Field(default=None, max_length=32)
    extra_args: list[str] = Field(default_factory=list, sa_column=Column(JSON, nullable=False))
    updated_at: datetime = Field(default_factory=utcnow)
