from __future__ import annotations

from datetime import datetime

from sqlalchemy import Column, Text, UniqueConstraint, false
from sqlmodel import Field, SQLModel

from .base import id_column, ref, utcnow


class Board(SQLModel, table=True):
    id: str = id_column()
    slug: str = Field(unique=True, index=True, max_length=64)
    name: str = Field(max_length=80)
    description: str = Field(default='', max_length=2000)
    icon: str = Field(default='dashboard', max_length=16)
    color: str = Field(default='#0d9488', max_length=16)
    private: bool = Field(default=False, sa_column_kwargs={'server_default': false()})  # creator, admins, members only
    others_can: str = Field(default='session', max_length=16,  # the level new worktrees on it start with
                            sa_column_kwargs={'server_default': 'session'})
    created_by: str = ref('user')
    created_at: datetime = Field(default_factory=utcnow)
    updated_at: datetime = Field(default_factory=utcnow)


class BoardMember(SQLModel, table=True):
    """Someone the creator invited to a private board (the creator and admins see it anyway)."""

    __table_args__ = (UniqueConstraint('board_id', 'user_id'),)

    id: str = id_column()
    board_id: str = ref('board', ondelete='CASCADE', index=True)
    user_id: str = ref('user', ondelete='CASCADE', index=True)


class Zone(SQLModel, table=True):
    id: str = id_column()
    board_id: str = ref('board', ondelete='CASCADE', index=True)
    label: str = Field(default='Zone', max_length=80)
    x: float = 0
    y: float = 0
    w: float = 400
    h: float = 300
    border_color: str = Field(default='#64748b', max_length=16)
    background_color: str = Field(default='#f1f5f9', max_length=16)
    locked: bool = False
    trigger_template: str | None = Field(default=None, max_length=20000)
    trigger_behavior: str = Field(default='always_new', max_length=16)
    trigger_runtime: str | None = Field(default=None, max_length=32)
    created_at: datetime = Field(default_factory=utcnow)


class CardPlacement(SQLModel, table=True):
    """A worktree's card on a board (a worktree sits on at most one board). x/y are relative to the zone, if any."""

    id: str = id_column()
    board_id: str = ref('board', ondelete='CASCADE', index=True)
    worktree_id: str = ref('worktree', ondelete='CASCADE', unique=True)
    zone_id: str | None = ref('zone', default=None, ondelete='SET NULL')
    x: float = 0
    y: float = 0
    zone_entry: int = 0  # counts the card's arrivals in a zone: with the zone id it names one drop
    updated_at: datetime = Field(default_factory=utcnow)
    updated_by: str | None = ref('user', default=None)


class ZoneFiring(SQLModel, table=True):
    """One drop into a zone with a trigger. `drop_key` (placement, zone, arrival) is unique, so a drop fires once.

    status: started (a session got the prompt), picking (show_picker: waiting for the dropping user to choose),
    failed (the template could not be rendered: nothing was started), cancelled (the user closed the picker).
    """

    id: str = id_column()
    drop_key: str = Field(unique=True, max_length=120)
    zone_id: str = ref('zone', ondelete='CASCADE', index=True)
    board_id: str = ref('board', ondelete='CASCADE')
    worktree_id: str = ref('worktree', ondelete='CASCADE')
    user_id: str = ref('user')
    status: str = Field(max_length=16)
    prompt: str | None = Field(default=None, sa_column=Column(Text))
    error: str | None = Field(default=None, max_length=1000)
    session_id: str | None = ref('agentsession', default=None, ondelete='SET NULL')
    created_at: datetime = Field(default_factory=utcnow, index=True)
    settled_at: datetime | None = None
