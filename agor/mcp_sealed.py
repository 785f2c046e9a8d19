"""Which MCP columns are sealed (`agor.secret_box`) and under which owner, purpose and name: one table that
`agor.mcp_servers` / `agor.mcp_oauth` follow when sealing and `user_secrets.reseal_all` uses to re-encrypt them under
a new master secret."""
from __future__ import annotations

from collections.abc import Callable
from typing import Any

from sqlmodel import Session, select

from .models import McpClient, McpGrant, McpPendingFlow, McpServer
from .secret_box import SecretBox

# model, column, (row -> (owner, purpose, name))
SEALED: list[tuple[type, str, Callable[[Any], tuple[str, str, str]]]] = [
    (McpServer, 'env', lambda row: ('instance', 'mcp-env', row.id)),
    (McpServer, 'header_value', lambda row: ('instance', 'mcp-header', row.id)),
    (McpServer, 'client_secret', lambda row: ('instance', 'mcp-client-secret', row.id)),
    (McpClient, 'client_secret', lambda row: ('instance', 'mcp-client', row.id)),
    (McpGrant, 'access_token', lambda row: (row.user_id, 'mcp-access', row.server_id)),
    (McpGrant, 'refresh_token', lambda row: (row.user_id, 'mcp-refresh', row.server_id)),
    (McpPendingFlow, 'code_verifier', lambda row: (row.user_id, 'mcp-pkce', row.state_hash)),
]


def reseal(session: Session, old: SecretBox, new: SecretBox) -> int:
    """Every sealed MCP value re-encrypted from `old` to `new` in the caller's transaction; how many."""
    count = 0
    for model, column, where in SEALED:
        for row in session.exec(select(model)).all():
            value = getattr(row, column)
            if value:
                setattr(row, column, new.seal(*where(row), old.open(*where(row), value)))
                session.add(row)
                count += 1
    return count
