"""An admin's Test connection of an MCP server: connect with the mcp SDK and list its tools, or say in one line why
not. A stdio server runs as a session run would run it; a remote one is called with the header or the admin's own
OAuth grant (without one, its OAuth discovery is checked)."""
from __future__ import annotations

import asyncio
import contextlib
from collections.abc import AsyncIterator
from typing import Any

from . import db, ids, mcp_stdio, unix_accounts
from .auth import require
from .config import Settings
from .errors import InvalidInput
from .mcp_discovery import McpAuthError, check_url, discover
from .mcp_servers import header, stdio_env
from .models import McpServer, Role, User

TEST_SECONDS = 15


async def test_connection(actor: User, server_id: Any, settings: Settings) -> dict[str, Any]:
    """Connect with the mcp SDK and list the tools: {'ok': True, 'tools': [...]}, or {'ok': False, 'error': why}
    (unreachable, needs authorization, TLS, protocol). A stdio server runs as a session run would run it: as the Unix
    account the admin's agents run as (`agor.mcp_stdio`). An OAuth server is tried with the admin's own grant;
    without one, its OAuth discovery is checked."""
    require(actor, Role.admin, 'test MCP servers')
    server = await asyncio.to_thread(_load, server_id)
    allow_loopback = settings.mcp_allow_loopback
    try:
        if server.transport == 'stdio':
            account, env = await asyncio.to_thread(lambda: (unix_accounts.account_for(settings, actor),
                                                            stdio_env(server)))  # passwd lookups, a sealed env
            tools = await _list_tools(mcp_stdio.streams(account, server.command or '', list(server.args), env))
        else:
            headers = await asyncio.to_thread(_remote_headers, server, actor.id, allow_loopback)
            if headers is None:
                found = await asyncio.to_thread(discover, server.url or '', allow_loopback)
                return {'ok': True, 'tools': [], 'note': f'OAuth discovery works (issuer {found.issuer}). Connect '
                        'your own grant under Settings → MCP authorizations to list the tools.'}
            tools = await _list_tools(_remote(server, headers))
    except (InvalidInput, McpAuthError, unix_accounts.AccountError) as error:
        return {'ok': False, 'error': error.message}
    except Exception as error:  # noqa: BLE001 (the SDK's and the transport's errors, as one line)
        return {'ok': False, 'error': _connection_error(error)}
    return {'ok': True, 'tools': tools}


def _remote_headers(server: McpServer, user_id: str, allow_loopback: bool) -> dict[str, str] | None:
    from . import mcp_oauth
    check_url(server.url or '', allow_loopback, 'MCP server URL')
    if server.auth == 'header':
        return header(server)
    if server.auth == 'oauth':
        try:
            return {'Authorization': f'Bearer {mcp_oauth.access_token(user_id, server.id)}'}
        except mcp_oauth.NeedsAuthorization:
            return None
    return {}


class _Watched:
    """The HTTP statuses a remote server answered during Test connection: a 401 surfaces from the SDK as a bare
    protocol error, so the answers are watched and `Unauthorized` says what happened."""

    def __init__(self) -> None:
        self.statuses: list[int] = []

    def client(self, headers: Any = None, timeout: Any = None, auth: Any = None) -> Any:
        from mcp.shared._httpx_utils import create_mcp_http_client
        client = create_mcp_http_client(headers, timeout, auth)
        client.event_hooks['response'].append(self.seen)
        return client

    async def seen(self, response: Any) -> None:
        self.statuses.append(response.status_code)


@contextlib.asynccontextmanager
async def _remote(server: McpServer, headers: dict[str, str]) -> AsyncIterator[tuple[Any, Any]]:
    from mcp.client.sse import sse_client
    from mcp.client.streamable_http import streamable_http_client
    watched = _Watched()
    try:
        if server.transport == 'sse':
            async with sse_client(server.url or '', headers=headers, httpx_client_factory=watched.client) as streams:
                yield streams
            return
        async with watched.client(headers) as client, \
                streamable_http_client(server.url or '', http_client=client) as (read, write):
            yield read, write
    except Exception:
        if 401 in watched.statuses or 403 in watched.statuses:
            raise Unauthorized() from None
        raise


async def _list_tools(transport: Any) -> list[str]:
    """The server's tool names, through the mcp SDK's client session over `transport` (an async context manager of
    the (read, write) streams), within TEST_SECONDS."""
    from mcp import ClientSession

    async def run() -> list[str]:
        async with transport as (read, write), ClientSession(read, write) as session:
            await session.initialize()
            return sorted(tool.name for tool in (await session.list_tools()).tools)
    return await asyncio.wait_for(run(), TEST_SECONDS)


class Unauthorized(Exception):
    """The server answered 401/403 during Test connection."""


def _connection_error(error: BaseException) -> str:
    """One line for an SDK or transport failure (exception groups unwrapped)."""
    while isinstance(error, BaseExceptionGroup) and error.exceptions:
        error = error.exceptions[0]
    text = str(error)
    name = type(error).__name__
    if isinstance(error, TimeoutError):
        return f'No answer within {TEST_SECONDS} s.'
    if 'ConnectError' in name or 'Connection refused' in text:
        return f'Unreachable: {text or name}.'
    if isinstance(error, Unauthorized):
        return 'The server answered 401: it needs authorization (check the header value or connect OAuth).'
    if 'SSL' in text or 'certificate' in text.lower():
        return f'TLS failed: {text[:200]}.'
    return f'The MCP handshake failed ({name}): {text[:200] or "no details"}.'


def _load(server_id: Any) -> McpServer:
    with db.read() as session:
        return ids.load(session, McpServer, server_id, 'MCP server')
