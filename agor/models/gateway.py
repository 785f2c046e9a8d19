"""The message gateway (agor.gateway): chat channels that drive sessions, who is who on them, their threads."""
from __future__ import annotations

from datetime import datetime

from sqlalchemy import JSON, Column, Text, UniqueConstraint
from sqlmodel import Field, SQLModel

from .base import id_column, ref, utcnow

SLACK_API = 'https://slack.com/api'


class GatewayChannel(SQLModel, table=True):
    """A chat app's webhook (one Slack app's request URL): messages to it start or continue sessions in `worktree_id`.

    `signing_secret`, `bot_token` and the values of `env` are sealed by `agor.secret_box` (owner: the channel id,
    purpose 'gateway', name 'signing_secret', 'bot_token' or 'env:<NAME>'); they are never shown again.
    `mcp_server_ids` are the MCP servers attached to the sessions it starts. `api_base` is the platform's Web API."""
    id: str = id_column()
    platform: str = Field(default='slack', max_length=16)
    name: str = Field(max_length=80)
    signing_secret: str = Field(sa_column=Column(Text, nullable=False))
    bot_token: str = Field(sa_column=Column(Text, nullable=False))
    board_id: str = ref('board', ondelete='CASCADE')
    worktree_id: str = ref('worktree', ondelete='CASCADE')
    runtime: str = Field(max_length=32)
    env: dict[str, str] = Field(default_factory=dict, sa_column=Column(JSON, nullable=False))
    mcp_server_ids: list[str] = Field(default_factory=list, sa_column=Column(JSON, nullable=False))
    api_base: str = Field(default=SLACK_API, max_length=300)
    enabled: bool = True
    created_by: str = ref('user')
    created_at: datetime = Field(default_factory=utcnow)
    updated_at: datetime = Field(default_factory=utcnow)


class _OnChannel(SQLModel):
    """A row about one external thing on a channel (a user, a thread), deleted with the channel; each table adds its
    UniqueConstraint on the channel and the external id."""
    id: str = id_column()
    channel_id: str = ref('gatewaychannel', ondelete='CASCADE')


class GatewayIdentity(_OnChannel, table=True):
    """An external user id on a channel is this app user (set by an admin, or by the user with a link code)."""
    __table_args__ = (UniqueConstraint('channel_id', 'external_id'),)
    external_id: str = Field(max_length=64)
    user_id: str = ref('user', ondelete='CASCADE', index=True)
    created_at: datetime = Field(default_factory=utcnow)


class GatewayThread(_OnChannel, table=True):
    """A chat thread bound to the session its first message started; `external_user` wrote that message."""
    __table_args__ = (UniqueConstraint('channel_id', 'thread_ts'),)
    external_channel: str = Field(max_length=64)
    thread_ts: str = Field(max_length=64)
    session_id: str = ref('agentsession', ondelete='CASCADE', unique=True)
    external_user: str = Field(max_length=64)
    created_at: datetime = Field(default_factory=utcnow)


class GatewayTurn(SQLModel, table=True):
    """A turn of a bound session as its thread saw it: whether the prompt came from the chat, the progress message,
    and when its answer was posted."""
    turn_id: str = ref('sessionturn', ondelete='CASCADE', primary_key=True)
    from_chat: bool = False
    status_ts: str | None = Field(default=None, max_length=64)
    reported_at: datetime | None = None


class GatewayEvent(SQLModel, table=True):
    """An event id already received on a channel: a platform's retry of it is answered without doing it again.
    Kept for `agor.gateway.service.EVENT_RETENTION`."""
    channel_id: str = ref('gatewaychannel', ondelete='CASCADE', primary_key=True)
    event_id: str = Field(primary_key=True, max_length=128)
    received_at: datetime = Field(default_factory=utcnow, index=True)


class GatewayLinkCode(SQLModel, table=True):
    """A user's one-time code (only its SHA-256 is stored): posted in a channel, it links the poster's external id to
    the user. One per user: a new one replaces the old."""
    user_id: str = ref('user', ondelete='CASCADE', primary_key=True)
    code_hash: str = Field(max_length=64, unique=True)
    expires_at: datetime
