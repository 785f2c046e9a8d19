"""Which MCP columns are sealed (`agor.secret_box`) and under which owner, purpose and name: one table that
`seal`/`unseal` follow for `agor.mcp_servers` / `agor.mcp_oauth` and `user_secrets.reseal_all` uses to re-encrypt them
under a new master secret."""
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

_WHERE = {(model, column): where for model, column, where in SEALED}


def seal(box: SecretBox, row: Any, column: str, value: str | None) -> str | None:
    """`value` sealed as `row.column` (under the owner, purpose and name SEALED gives it); None for no value."""
    return box.seal(*_WHERE[type(row), column](row), value) if value else None


def unseal(box: SecretBox, row: Any, column: str) -> str | None:
    """`row.column` opened; None when it holds nothing."""
    sealed = getattr(row, column)
    return box.open(*_WHERE[type(row), column](row), sealed) if sealed else None


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
