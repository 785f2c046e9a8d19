from __future__ import annotations

from datetime import datetime

from sqlalchemy import UniqueConstraint
from sqlmodel import Field, SQLModel

from .base import new_id, utcnow


class Repo(SQLModel, table=True):
    id: str = Field(default_factory=new_id, primary_key=True, max_length=36)
    slug: str = Field(unique=True, max_length=64)
    name: str = Field(max_length=120)
    path: str = Field(max_length=1024)
    remote_url: str | None = Field(default=None, max_length=1024)
    default_branch: str = Field(max_length=255)
    created_by: str = Field(foreign_key='user.id', max_length=36)
    created_at: datetime = Field(default_factory=utcnow)


class Worktree(SQLModel, table=True):
    __table_args__ = (UniqueConstraint('repo_id', 'name'),)

    id: str = Field(default_factory=new_id, primary_key=True, max_length=36)
    repo_id: str = Field(foreign_key='repo.id', ondelete='CASCADE', index=True, max_length=36)
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
    created_by: str = Field(foreign_key='user.id', max_length=36)
    created_at: datetime = Field(default_factory=utcnow)
