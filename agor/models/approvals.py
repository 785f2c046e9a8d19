from __future__ import annotations

from datetime import datetime
from typing import Any

from sqlalchemy import JSON, Column, Text
from sqlmodel import Field, SQLModel

from .base import id_column, ref, utcnow

APPROVAL_STATUSES = ('pending', 'allowed', 'denied', 'expired', 'cancelled')


class Approval(SQLModel, table=True):
    """An agent's request to use a tool (a shell command, an edit), waiting for a person with prompt rights on its
    session (agor.approvals). The first answer wins and names who decided; no answer by `expires_at` denies."""

    id: str = id_column()
    session_id: str = ref('agentsession', ondelete='CASCADE', index=True)
    turn_id: str | None = Field(default=None, max_length=36)
    tool: str = Field(max_length=200)
    input: dict[str, Any] = Field(default_factory=dict, sa_column=Column(JSON, nullable=False))
    status: str = Field(default='pending', max_length=16, index=True)  # APPROVAL_STATUSES
    decided_by: str | None = ref('user', default=None, ondelete='SET NULL')
    decided_at: datetime | None = None
    message: str | None = Field(default=None, sa_column=Column(Text))  # what the agent is told on a denial
    created_at: datetime = Field(default_factory=utcnow)
    expires_at: datetime
