from __future__ import annotations

from datetime import datetime

from sqlalchemy import UniqueConstraint
from sqlmodel import Field, SQLModel

from .base import id_column, ref, utcnow


class Repo(SQLModel, table=True):
    id: str = id_column()
    slug: str = Field(unique=True, max_length=64)
    name: str = Field(max_length=120)
    path: str = Field(max_length=1024)
    remote_url: str | None = Field(default=None, max_length=1024)
    default_branch: str = Field(max_length=255)
    created_by: str = ref('user')
    created_at: datetime = Field(default_factory=utcnow)


class Worktree(SQLModel, table=True):
    __table_args__ = (UniqueConstraint('repo_id', 'name'),)

    id: str = id_column()
    repo_id: str = ref('repo', ondelete='CASCADE', index=True)
    name: str = Field(max_length=64)
    branch: str = Field(max_length=255)
    path: str = Field(max_length=1024)
    base_ref: str | None = Field(default=None, max_length=255)
    notes: str = Field(default='', max_length=20000)
    issue_url: str | None = Field(default=None, max_length=1024)
    pr_url: str | None = Field(default=None, max_length=1024)
    needs_attention: bool = False
    archived: bool = False
    # what people other than its creator and admins may do: view < session < prompt < all (agor.permissions)
    others_can: str = Field(default='session', max_length=16, sa_column_kwargs={'server_default': 'session'})
    created_by: str = ref('user')
    created_at: datetime = Field(default_factory=utcnow)
