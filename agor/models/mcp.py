"""Instance MCP servers, the OAuth clients the app holds for them, users' grants and pending authorizations, and which
servers a session selected. Every secret column is sealed by `agor.secret_box` (see `agor.mcp_servers.SEALS`)."""
from __future__ import annotations

from datetime import datetime
from typing import Any

from sqlalchemy import JSON, Column, Text, UniqueConstraint
from sqlmodel import Field, SQLModel

from .base import id_column, ref, utcnow


class McpServer(SQLModel, table=True):
    """An MCP server an admin defined for the instance. `transport` stdio (command, args, env: sealed JSON) or sse /
    http (url). `auth` none, header (`header_name`: sealed `header_value`) or oauth (each user connects their own
    grant; `client_id` / sealed `client_secret` when the admin pre-registered a client, else DCR; `scopes`;
    `send_resource`: the RFC 8707 resource parameter)."""
    id: str = id_column()
    name: str = Field(max_length=64, unique=True)
    transport: str = Field(max_length=8)
    command: str | None = Field(default=None, sa_column=Column(Text))
    args: list[str] = Field(default_factory=list, sa_column=Column(JSON, nullable=False, server_default='[]'))
    env: str | None = Field(default=None, sa_column=Column(Text))
    url: str | None = Field(default=None, sa_column=Column(Text))
    auth: str = Field(default='none', max_length=8)
    header_name: str | None = Field(default=None, max_length=128)
    header_value: str | None = Field(default=None, sa_column=Column(Text))
    client_id: str | None = Field(default=None, max_length=255)
    client_secret: str | None = Field(default=None, sa_column=Column(Text))
    scopes: str | None = Field(default=None, max_length=500)
    send_resource: bool = True
    enabled: bool = True
    created_by: str | None = ref('user', default=None, ondelete='SET NULL')
    updated_at: datetime = Field(default_factory=utcnow)


class McpClient(SQLModel, table=True):
    """The OAuth client the app uses with one authorization server for one MCP server and one redirect URI (the app's
    callback as the browser reached it: another address gets a client of its own, so grants made through one never
    lose theirs), registered dynamically or the admin's, with the server's metadata as discovered (its endpoints are
    used for refresh and revocation)."""
    __table_args__ = (
        UniqueConstraint('server_id', 'issuer', 'redirect_uri', name='uq_mcpclient_server_issuer_redirect'),
    )
    id: str = id_column()
    server_id: str = ref('mcpserver', ondelete='CASCADE', index=True)
    issuer: str = Field(sa_column=Column(Text, nullable=False))
    client_id: str = Field(max_length=255)
    client_secret: str | None = Field(default=None, sa_column=Column(Text))
    auth_method: str = Field(default='client_secret_post', max_length=32)
    redirect_uri: str = Field(sa_column=Column(Text, nullable=False))
    metadata_: dict[str, Any] = Field(default_factory=dict, sa_column=Column('metadata', JSON, nullable=False))
    source: str = Field(default='dcr', max_length=8)  # dcr | static
    created_at: datetime = Field(default_factory=utcnow)


class McpGrant(SQLModel, table=True):
    """A user's OAuth grant for one MCP server: sealed tokens, absolute expiry (None: valid until a 401), status
    connected | needs_reauth. `version` goes up with every refresh: a refresh stores its result only if the version
    is still the one it read (compare-and-swap), so one refresh of a rotating refresh token wins."""
    __table_args__ = (UniqueConstraint('user_id', 'server_id'),)
    id: str = id_column()
    user_id: str = ref('user', ondelete='CASCADE', index=True)
    server_id: str = ref('mcpserver', ondelete='CASCADE')
    client_row: str = ref('mcpclient', ondelete='CASCADE')
    access_token: str = Field(sa_column=Column(Text, nullable=False))
    refresh_token: str | None = Field(default=None, sa_column=Column(Text))
    expires_at: datetime | None = None
    scope: str | None = Field(default=None, sa_column=Column(Text))
    status: str = Field(default='connected', max_length=16)
    last_error: str | None = Field(default=None, sa_column=Column(Text))
    version: int = 1
    refresh_lease: datetime | None = None  # a refresh under way (any process) until then: the others wait for it
    updated_at: datetime = Field(default_factory=utcnow)


class McpPendingFlow(SQLModel, table=True):
    """An authorization under way: looked up by the hash of its `state`, used once (deleted by the callback), valid
    for a few minutes. The PKCE verifier is sealed."""
    state_hash: str = Field(primary_key=True, max_length=64)
    user_id: str = ref('user', ondelete='CASCADE')
    server_id: str = ref('mcpserver', ondelete='CASCADE')
    client_row: str = ref('mcpclient', ondelete='CASCADE')
    code_verifier: str = Field(sa_column=Column(Text, nullable=False))
    resource: str | None = Field(default=None, sa_column=Column(Text))
    expires_at: datetime


class SessionMcpServer(SQLModel, table=True):
    """An MCP server a session selected (it runs with its creator's grant for it)."""
    session_id: str = ref('agentsession', ondelete='CASCADE', primary_key=True)
    server_id: str = ref('mcpserver', ondelete='CASCADE', primary_key=True)
