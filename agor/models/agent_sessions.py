from __future__ import annotations

from datetime import datetime
from typing import Any

from sqlalchemy import JSON, Column, Text, UniqueConstraint
from sqlmodel import Field, SQLModel

from .base import id_column, ref, utcnow

STATUSES = ('idle', 'running', 'awaiting_permission', 'awaiting_input', 'completed', 'failed', 'stopped')
RUNNING = ('running', 'awaiting_permission')  # a run is going (awaiting_permission: a tool call waits for a person)


class AgentSession(SQLModel, table=True):
    """An agent conversation in a worktree. It always runs as its creator (their env, keys and grants).

    status: idle (never run), running, awaiting_permission (running, and a tool call waits for a person's answer:
    agor.approvals), awaiting_input (the last turn ended and the agent waits for the next prompt), completed (the
    shell runtime's command finished), failed, stopped. `attention_since` is when it started needing a human (with
    `attention_reason` when the agent said why: agor.agent_tools.request_attention); each viewer acknowledges it for
    themselves (SessionAck).
    """

    id: str = id_column()
    worktree_id: str = ref('worktree', ondelete='CASCADE', index=True)
    created_by: str = ref('user')
    runtime: str = Field(max_length=32)
    title: str = Field(max_length=120)
    model: str | None = Field(default=None, max_length=120)
    permission_mode: str | None = Field(default=None, max_length=32)
    extra_args: list[str] = Field(default_factory=list, sa_column=Column(JSON, nullable=False, server_default='[]'))
    status: str = Field(default='idle', max_length=16, index=True)
    resume_id: str | None = Field(default=None, max_length=200)
    pid: int | None = None
    error: str | None = Field(default=None, sa_column=Column(Text))
    stuck: bool = False
    attention_since: datetime | None = None
    attention_reason: str | None = Field(default=None, max_length=300)
    last_output_at: datetime | None = None
    created_at: datetime = Field(default_factory=utcnow)
    updated_at: datetime = Field(default_factory=utcnow)


class SessionTurn(SQLModel, table=True):
    """One prompt: queued until the session is free, then run. `created_by` is who prompted it."""

    id: str = id_column()
    session_id: str = ref('agentsession', ondelete='CASCADE', index=True)
    created_by: str = ref('user')
    prompt: str = Field(sa_column=Column(Text, nullable=False))
    status: str = Field(default='queued', max_length=16)  # queued | running | completed | failed | stopped
    error: str | None = Field(default=None, sa_column=Column(Text))
    created_at: datetime = Field(default_factory=utcnow, index=True)
    started_at: datetime | None = None
    finished_at: datetime | None = None


class TranscriptEntry(SQLModel, table=True):
    """A transcript line: the prompt (`user`), assistant text, tool calls/results, errors, usage, system notes."""

    id: int | None = Field(default=None, primary_key=True)
    session_id: str = ref('agentsession', ondelete='CASCADE', index=True)
    turn_id: str | None = Field(default=None, max_length=36)
    kind: str = Field(max_length=16)
    text: str = Field(default='', sa_column=Column(Text, nullable=False))
    data: dict[str, Any] = Field(default_factory=dict, sa_column=Column(JSON, nullable=False))
    created_at: datetime = Field(default_factory=utcnow)


class _UserOnSession(SQLModel):
    """A row of one user about one session (at most one per pair: each table adds the UniqueConstraint)."""

    id: str = id_column()
    user_id: str = ref('user', ondelete='CASCADE')
    session_id: str = ref('agentsession', ondelete='CASCADE', index=True)


class SessionAck(_UserOnSession, table=True):
    """A viewer has seen the session since it last needed attention (so their pulse stops, not anyone else's)."""

    __table_args__ = (UniqueConstraint('user_id', 'session_id'),)
    seen_at: datetime = Field(default_factory=utcnow)


class SessionFollow(_UserOnSession, table=True):
    """Someone besides the creator who wants the chime and inbox entry when a run ends."""

    __table_args__ = (UniqueConstraint('user_id', 'session_id'),)
