from __future__ import annotations

from datetime import datetime

from sqlalchemy import JSON, Column, Text, UniqueConstraint
from sqlmodel import Field, SQLModel

from .base import id_column, ref, utcnow


class Comment(SQLModel, table=True):
    """A thread root (parent_id None) or a reply. Roots carry the target and the optional pin.

    target_type is board | zone | worktree | session. target_id has no foreign key on purpose: when the zone or
    worktree is deleted the thread falls back to the board and `detached_from` says what it was attached to.
    A pin on a board is an absolute canvas point; on a zone or worktree it is an offset from its top-left corner.
    """

    id: str = id_column()
    board_id: str = ref('board', ondelete='CASCADE', index=True)
    parent_id: str | None = ref('comment', default=None, ondelete='CASCADE', index=True)
    author_id: str = ref('user', index=True)
    body: str = Field(sa_column=Column(Text, nullable=False))
    target_type: str = Field(default='board', max_length=16)
    target_id: str | None = Field(default=None, index=True, max_length=36)
    detached_from: str | None = Field(default=None, max_length=120)
    pin_x: float | None = None
    pin_y: float | None = None
    mentions: list[str] = Field(default_factory=list, sa_column=Column(JSON, nullable=False))
    # written by the author's agent, through the app's MCP server (shown as "Alice's agent"); no foreign key: the
    # mark stays when the session is deleted
    agent_session_id: str | None = Field(default=None, max_length=36)
    resolved: bool = False
    resolved_by: str | None = ref('user', default=None)
    resolved_at: datetime | None = None
    edited: bool = False
    deleted: bool = False
    created_at: datetime = Field(default_factory=utcnow, index=True)
    updated_at: datetime = Field(default_factory=utcnow)


class CommentReaction(SQLModel, table=True):
    __table_args__ = (UniqueConstraint('comment_id', 'user_id', 'emoji'),)

    id: str = id_column()
    comment_id: str = ref('comment', ondelete='CASCADE', index=True)
    user_id: str = ref('user')
    emoji: str = Field(max_length=16)
    created_at: datetime = Field(default_factory=utcnow)


class Notification(SQLModel, table=True):
    """An inbox entry: kind is mention | reply | worktree_comment; `link` is the deep link it opens."""

    id: str = id_column()
    user_id: str = ref('user', ondelete='CASCADE', index=True)
    kind: str = Field(max_length=32)
    actor_id: str | None = ref('user', default=None)
    board_id: str | None = ref('board', default=None, ondelete='CASCADE')
    comment_id: str | None = Field(default=None, max_length=36)
    title: str = Field(max_length=200)
    preview: str = Field(default='', max_length=300)
    link: str = Field(max_length=300)
    read_at: datetime | None = None
    created_at: datetime = Field(default_factory=utcnow, index=True)
