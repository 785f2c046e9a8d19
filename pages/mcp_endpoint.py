"""`/mcp`: the app as an MCP server for its own agents (streamable HTTP, the `mcp` package's MCPServer), on NiceGUI's
FastAPI app.

Each run's CLI gets this server as `agor`, with a bearer token for its turn (agor.agent_tools.run_server). Every HTTP
request is checked before the MCP layer sees it (`McpEndpoint`: no token, a bad or expired one, or one whose run has
ended is a 401 JSON answer with the reason; a deactivated account's a 403), and every tool call loads its caller
again (agor.agent_tools.caller) and runs the domain function off the event loop as that user. The server is
stateless (a fresh transport per request), so any process of a cluster answers any request; the approval tool waits
on the event bus. Bearer tokens, not cookies, authenticate it, so the SDK's DNS-rebinding check (meant for
unauthenticated local servers) is off and the app's own middleware applies as for every route.
"""
from __future__ import annotations

import asyncio
import contextlib
import json
from collections.abc import Callable
from typing import Any

from mcp.server.mcpserver import Context, MCPServer
from mcp.server.mcpserver.exceptions import ToolError
from mcp.server.transport_security import TransportSecuritySettings
from nicegui import app
from starlette.responses import JSONResponse
from starlette.routing import Route
from starlette.types import Receive, Scope, Send

from agor import agent_tools, approvals
from agor.agent_tokens import InvalidToken
from agor.agent_tools import Caller
from agor.config import Settings
from agor.errors import DomainError

PATH = '/mcp'
INSTRUCTIONS = ('The Agor board your session runs on. You act as the person who started this session, with their '
                'rights: read and post comments on your worktree (mention people with @Name), read your own and '
                'sibling sessions\' transcripts, keep the worktree\'s notes and links current, and request_attention '
                'when a person must look.')


class McpEndpoint:
    """The ASGI app at /mcp: the token check, then the MCP server of the current start (NiceGUI's test users start
    the app several times in one process; each start has its own server and session manager)."""

    def __init__(self) -> None:
        self.settings: Settings | None = None
        self.app: Any = None
        self._stop: asyncio.Event | None = None
        self._task: asyncio.Task | None = None

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if self.app is None or self.settings is None:
            return await JSONResponse({'detail': 'The MCP server is starting.'}, 503)(scope, receive, send)
        try:
            await asyncio.to_thread(agent_tools.caller, self.settings, bearer(scope))
        except DomainError as refused:
            headers = {'WWW-Authenticate': 'Bearer'} if refused.status == 401 else None
            return await JSONResponse({'detail': refused.message}, refused.status, headers)(scope, receive, send)
        await self.app(scope, receive, send)

    async def start(self, settings: Settings) -> None:
        server = build(settings)
        self.settings = settings
        self.app = server.streamable_http_app(
            streamable_http_path=PATH, stateless_http=True,
            transport_security=TransportSecuritySettings(enable_dns_rebinding_protection=False))
        self._stop = asyncio.Event()
        ready = asyncio.Event()

        async def serve() -> None:
            async with server.session_manager.run():
                ready.set()
                await self._stop.wait()
        self._task = asyncio.create_task(serve(), name='mcp session manager')
        await ready.wait()

    async def stop(self) -> None:
        self.app = None
        if self._stop is not None and self._task is not None:
            self._stop.set()
            with contextlib.suppress(Exception):
                await self._task
        self._task = None


endpoint = McpEndpoint()


def register(settings: Settings) -> None:
    """The route, once per process (pages register again on every start)."""
    if not any(getattr(route, 'path', None) == PATH for route in app.router.routes):
        app.router.routes.insert(0, Route(PATH, endpoint=endpoint, methods=['GET', 'POST', 'DELETE']))


def bearer(scope: Scope) -> str:
    headers = dict(scope.get('headers') or [])
    scheme, _, token = headers.get(b'authorization', b'').decode('latin-1').partition(' ')
    if scheme.lower() != 'bearer' or not token.strip():
        raise InvalidToken('Not authenticated: send the token of your run as "Authorization: Bearer …".')
    return token.strip()


def build(settings: Settings) -> MCPServer:
    server = MCPServer(agent_tools.SERVER_NAME, instructions=INSTRUCTIONS)

    def tool(fn: Callable[..., Any]) -> Callable[..., Any]:
        return server.tool(structured_output=False)(fn)

    async def call(ctx: Context, fn: Callable[..., Any], *args: Any, **kwargs: Any) -> str:
        """The domain function as the caller is now, off the event loop; its answer as JSON text."""
        try:
            caller = await _caller(settings, ctx)
            result = await asyncio.to_thread(fn, caller, *args, **kwargs)
        except DomainError as refused:
            raise ToolError(refused.message) from None
        return json.dumps(result, ensure_ascii=False, default=str)

    @tool
    async def list_boards(ctx: Context) -> str:
        """The boards the person you act as can see."""
        return await call(ctx, agent_tools.list_boards)

    @tool
    async def list_worktrees(ctx: Context, board: str | None = None) -> str:
        """The worktrees they can see; `board` (an id or slug) keeps those on that board. `yours` marks this
        session's worktree."""
        return await call(ctx, agent_tools.list_worktrees, board)

    @tool
    async def read_comments(ctx: Context, include_resolved: bool = False) -> str:
        """The comment threads on your worktree and its sessions."""
        return await call(ctx, agent_tools.read_comments, include_resolved)

    @tool
    async def post_comment(ctx: Context, text: str, reply_to: str | None = None) -> str:
        """Comment on your worktree's card (Markdown; @Name mentions notify that person), or reply to a thread
        (`reply_to`: the thread's id from read_comments). It shows as written by your user's agent."""
        return await call(ctx, agent_tools.post_comment, text, reply_to)

    @tool
    async def list_sessions(ctx: Context) -> str:
        """The agent sessions of your worktree: this one and its siblings."""
        return await call(ctx, agent_tools.list_sessions)

    @tool
    async def read_transcript(ctx: Context, session_id: str | None = None, limit: int = 40) -> str:
        """The newest entries of this session's transcript, or of a sibling session in the same worktree."""
        return await call(ctx, agent_tools.read_transcript, session_id, limit)

    @tool
    async def set_worktree_notes(ctx: Context, notes: str) -> str:
        """Replace the worktree's notes (shown on its card dialog)."""
        return await call(ctx, agent_tools.set_worktree_notes, notes)

    @tool
    async def set_worktree_links(ctx: Context, issue_url: str | None = None, pr_url: str | None = None) -> str:
        """Set the worktree's issue and/or pull request link (http/https; '' clears one)."""
        return await call(ctx, agent_tools.set_worktree_links, issue_url, pr_url)

    @tool
    async def request_attention(ctx: Context, reason: str) -> str:
        """Make the worktree's card pulse on the board with your reason, until people look at this session."""
        return await call(ctx, agent_tools.request_attention, reason)

    @server.tool(name=agent_tools.APPROVAL_TOOL, structured_output=False)
    async def approve(ctx: Context, tool_name: str, input: dict[str, Any],  # noqa: A002 (Claude Code's name)
                      tool_use_id: str | None = None) -> str:
        """Ask the team to allow a tool call (Claude Code's permission prompt): waits for Allow or Deny in the app."""
        timeout = settings.approval_timeout_seconds
        try:
            caller = await _caller(settings, ctx)
            asked = await asyncio.to_thread(agent_tools.request_approval, caller, tool_name, input, timeout)
            decided = await approvals.wait(asked['id'], caller.session_id, timeout)
        except DomainError as refused:
            return json.dumps({'behavior': 'deny', 'message': refused.message})
        return json.dumps(approvals.answer(decided, input))

    return server


async def _caller(settings: Settings, ctx: Context) -> Caller:
    headers = ctx.headers or {}
    scheme, _, token = (headers.get('authorization') or '').partition(' ')
    return await asyncio.to_thread(agent_tools.caller, settings, token.strip() if scheme.lower() == 'bearer' else '')
