"""The HTTP routes of MCP grants: the OAuth callback and the per-session MCP proxy.

- `GET /mcp-oauth/callback`: where the authorization server sends the browser back. It finishes the flow as the
  browser's logged-in user (`agor.mcp_oauth.finish`) and returns to Settings → MCP authorizations; a refusal is a
  small page saying why (never a redirect to a URL from the query).
- `/mcp-proxy/<session>/<server>` (and `/o/<mac>/<path>`: the message endpoint an SSE server announced, bound to
  the session and server by the MAC; no other path of the server's origin): what agent CLIs call for header and
  OAuth servers. The bearer must be the running turn's (`proxy_token`); the call
  goes on with the session creator's CURRENT access token (refreshed when it is about to expire, and once more when
  the server answers 401) or the server's header. The CLI never holds the user's token.
"""
from __future__ import annotations

import asyncio
import html
import logging
from collections.abc import AsyncIterator, Callable
from typing import Any

import httpx
from fastapi import Request, Response
from fastapi.responses import HTMLResponse, JSONResponse, RedirectResponse, StreamingResponse
from nicegui import app

from agor import agent_tokens, logins, mcp_oauth, mcp_servers
from agor.config import Settings
from agor.errors import DomainError
from agor.models import User
from components.act import LOGIN

log = logging.getLogger(__name__)
SETTINGS_PAGE = '/?settings=mcp-authorizations'
FORWARDED = ('content-type', 'accept', 'mcp-session-id', 'mcp-protocol-version', 'last-event-id')
RETURNED = ('content-type', 'mcp-session-id', 'cache-control')
METHODS = ['GET', 'POST', 'DELETE']


def register(settings: Settings) -> None:
    @app.get(mcp_oauth.CALLBACK_PATH, include_in_schema=False)
    async def callback(request: Request) -> Response:
        token = app.storage.user.get(LOGIN)
        try:
            await asyncio.to_thread(_finish, token, dict(request.query_params))
        except DomainError as problem:
            return _page(problem.message, problem.status)
        except Exception:
            log.exception('the MCP OAuth callback failed')
            return _page('Something went wrong on the server; nothing was stored. Try connecting again.', 500)
        return RedirectResponse(SETTINGS_PAGE, status_code=303)
    register_proxy(settings, app)


def register_proxy(settings: Settings, target: Any) -> None:
    """The proxy's routes on `target` (the app; tests serve them alone)."""
    async def proxy(request: Request, session_id: str, server_name: str, rest: str = '') -> Response:
        bearer = agent_tokens.bearer(request.headers.get('authorization'))
        try:
            if not bearer:
                return JSONResponse({'detail': 'Send the run\'s MCP proxy token as a Bearer token.'}, 401)
            upstream = await asyncio.to_thread(mcp_servers.proxy_target, settings, session_id, server_name, bearer)
            return await _forward(request, settings, session_id, upstream, rest)
        except DomainError as problem:
            return JSONResponse({'detail': problem.message}, problem.status)
        except httpx.HTTPError as problem:
            return JSONResponse({'detail': f'The MCP server is unreachable: {type(problem).__name__}.'}, 502)

    target.add_api_route('/mcp-proxy/{session_id}/{server_name}', proxy, methods=METHODS, include_in_schema=False)
    target.add_api_route('/mcp-proxy/{session_id}/{server_name}/o/{rest:path}', proxy, methods=METHODS,
                         include_in_schema=False)


def _finish(token: str | None, params: dict[str, str]) -> str:
    found = logins.current(token)
    user: User | None = found[1] if found else None
    return mcp_oauth.finish(user, params)


def _page(message: str, status: int) -> HTMLResponse:
    body = (f'<!doctype html><html lang="en"><head><meta charset="utf-8"><title>MCP authorization · Agor</title>'
            f'</head><body style="font-family:sans-serif;max-width:40rem;margin:4rem auto">'
            f'<h1>The MCP authorization did not finish</h1><p role="alert">{html.escape(message)}</p>'
            f'<p><a href="{SETTINGS_PAGE}">Back to MCP authorizations</a></p></body></html>')
    return HTMLResponse(body, status_code=status if 400 <= status < 600 else 400)


async def _forward(request: Request, settings: Settings, session_id: str, target: mcp_servers.ProxyTarget,
                   rest: str) -> Response:
    url = mcp_servers.upstream_url(settings, session_id, target, rest, request.url.query)
    body = await request.body()
    headers = {name: value for name, value in request.headers.items() if name.lower() in FORWARDED}
    token = None
    client = httpx.AsyncClient(timeout=httpx.Timeout(30.0, read=300.0), follow_redirects=False, trust_env=False)
    try:
        for attempt in range(2):
            if target.auth == 'oauth':
                token = await asyncio.to_thread(mcp_oauth.access_token, target.user_id, target.server_id,
                                                stale=token if attempt else None)
                auth = {'Authorization': f'Bearer {token}'}
            else:
                auth = target.headers
            upstream = await client.send(client.build_request(request.method, url, content=body,
                                                              headers={**headers, **auth}), stream=True)
            if upstream.status_code != 401 or target.auth != 'oauth' or attempt:
                break
            await upstream.aclose()  # refused: refresh once and try again
        if upstream.status_code == 401 and target.auth == 'oauth' and not rest:  # the server's own URL refused it
            await asyncio.to_thread(mcp_oauth.mark_refused, target.user_id, target.server_id)
    except BaseException:
        await client.aclose()
        raise
    returned = {name: value for name, value in upstream.headers.items() if name.lower() in RETURNED}
    sse_stream = target.transport == 'sse' and not rest and request.method == 'GET'
    own_base = f'/mcp-proxy/{session_id}/{target.name}/o/'
    chunks = _endpoint_rewritten(upstream, lambda path: own_base + mcp_servers.announced(
        settings, session_id, target, path)) if sse_stream else upstream.aiter_bytes()
    return StreamingResponse(_closing(chunks, upstream, client), status_code=upstream.status_code, headers=returned)


async def _closing(chunks: AsyncIterator[bytes], upstream: httpx.Response,
                   client: httpx.AsyncClient) -> AsyncIterator[bytes]:
    """The upstream answer's bytes; the answer and its client (one per call) are closed when it ends."""
    try:
        async for chunk in chunks:
            yield chunk
    finally:
        await upstream.aclose()
        await client.aclose()


async def _endpoint_rewritten(upstream: httpx.Response, proxied: Callable[[str], str]) -> AsyncIterator[bytes]:
    """An SSE server's stream, with the path its `endpoint` event announces pointed at this proxy (`proxied`)."""
    event: Any = None
    async for line in upstream.aiter_lines():
        if line.startswith('event:'):
            event = line[6:].strip()
        elif line.startswith('data:') and event == 'endpoint' and line[5:].strip().startswith('/'):
            line = f'data: {proxied(line[5:].strip())}'
        elif not line:
            event = None
        yield (line + '\n').encode()
