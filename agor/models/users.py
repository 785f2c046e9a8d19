from __future__ import annotations

from datetime import datetime
from enum import IntEnum
from typing import Any

from sqlalchemy import JSON, Column
from sqlmodel import Field, SQLModel

from .base import id_column, ref, utcnow


class Role(IntEnum):
    viewer = 0
    member = 1
    admin = 2
    owner = 3

    @classmethod
    def parse(cls, name: str) -> Role:
        try:
            return cls[name]
        except KeyError:
            raise ValueError(f'unknown role {name!r}') from None


class User(SQLModel, table=True):
    id: str = id_column()
    email: str = Field(unique=True, index=True, max_length=254)  # stored lower-cased
    name: str = Field(max_length=80)
    role: str = Field(default='member', max_length=16)
    password_hash: str = Field(max_length=255)
    avatar_color: str = Field(max_length=16)
    avatar_id: str | None = Field(default=None, max_length=36)  # an uploaded avatar (UserAvatar), else initials
    active: bool = True
    created_at: datetime = Field(default_factory=utcnow)
    last_seen_at: datetime | None = None
    preferences: dict[str, Any] = Field(default_factory=dict, sa_column=Column(JSON, nullable=False,
                                                                         server_default='{}'))

    @property
    def level(self) -> Role:
        return Role.parse(self.role)

    def has(self, role: Role) -> bool:
        return self.active and self.level >= role

    @property
    def avatar_url(self) -> str | None:
        return f'/avatars/{self.avatar_id}' if self.avatar_id else None

    @property
    def initials(self) -> str:
        parts = [p for p in self.name.replace('-', ' ').split() if p]
        letters = ''.join(p[0] for p in parts[:2]) or self.email[:1]
        return letters.upper()


class Invite(SQLModel, table=True):
    id: str = id_column()
    token_hash: str = Field(unique=True, max_length=64)
    role: str = Field(max_length=16)
    email: str | None = Field(default=None, max_length=254)
    created_by: str = ref('user')
    created_at: datetime = Field(default_factory=utcnow)
    expires_at: datetime
    used_at: datetime | None = None
    used_by: str | None = ref('user', default=None)


class Login(SQLModel, table=True):
    """One login of one browser: its token lives in that browser's server-side storage, only its hash here. Logging
    out ends it, and every page load and action checks it, so an ended login is refused in every tab at once."""
    id: str = id_column()
    token_hash: str = Field(unique=True, max_length=64)
    user_id: str = ref('user', index=True)
    created_at: datetime = Field(default_factory=utcnow)
    ended_at: datetime | None = None
