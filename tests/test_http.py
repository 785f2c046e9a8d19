"""The running app over plain HTTP: health, login redirect, the websocket Origin check and its compression."""
import asyncio
import sqlite3

import httpx
import websockets

from .app_server import login_cookie, running_app


def test_health_redirect_and_origin_check(tmp_path):
    with running_app(tmp_path / 'app', AGOR_OWNER_EMAIL='ops@example.com', AGOR_OWNER_PASSWORD='from-env-123') as server:
        assert httpx.get(f'{server.url}/healthz').json() == {'status': 'ok'}
        response = httpx.get(f'{server.url}/b/anything')
        assert response.status_code == 307 and response.headers['location'].startswith('/login?next=')
        handshake = f'{server.url}/_nicegui_ws/socket.io/?EIO=4&transport=polling'
        assert httpx.get(handshake, headers={'Origin': 'http://evil.example'}).status_code == 400
        assert httpx.get(handshake, headers={'Origin': server.url}).status_code == 200
        # the owner from the environment (unattended install) can log in: the login page is served, not setup
        assert 'Welcome back' in httpx.get(f'{server.url}/login').text
        # websockets are compressed, without server context takeover: no zlib state is kept per open page
        asyncio.run(_check_compression(server.url))


async def _check_compression(url: str) -> None:
    ws_url = url.replace('http://', 'ws://') + '/_nicegui_ws/socket.io/?EIO=4&transport=websocket'
    async with websockets.connect(ws_url, origin=url) as ws:
        extensions = ws.response.headers.get('Sec-WebSocket-Extensions', '')
    assert extensions.startswith('permessage-deflate') and 'server_no_context_takeover' in extensions


BUSY_REQUESTS = 60  # more than asyncio's default worker threads (at most 32), each held by a write waiting on a lock
LONG_WRITE_SECONDS = 4  # longer than NiceGUI's default response_timeout (3 s)


def test_a_page_queued_behind_busy_workers_is_served_late_not_replaced_by_an_error(board_app):
    """While a long write holds the database, every worker thread is taken by a logout waiting for it; a board page
    opened meanwhile waits its turn and shows the board, instead of NiceGUI's "took longer than the response_timeout"
    page after 3 s (what 10 viewers opening a session at once got on a busy machine)."""
    server, seeded = board_app
    bob = seeded.users['bob'].id
    busy = [login_cookie(server, bob) for _ in range(BUSY_REQUESTS)]
    viewer = login_cookie(server, bob)
    long_write = sqlite3.connect(server.data_dir / 'agor.db', isolation_level=None)
    long_write.execute('BEGIN IMMEDIATE')
    try:
        response = asyncio.run(_board_while_workers_wait(server, seeded.board.slug, busy, viewer, long_write))
    finally:
        if long_write.in_transaction:
            long_write.rollback()
        long_write.close()
    assert response.status_code == 200
    assert 'response_timeout' not in response.text
    assert 'Sprint' in response.text and 'agor-canvas' in response.text


async def _board_while_workers_wait(server, slug: str, busy: list[str], viewer: str, long_write) -> httpx.Response:
    sent = asyncio.Event()
    count = 0

    async def on_request(_: httpx.Request) -> None:
        nonlocal count
        count += 1
        if count == len(busy):
            sent.set()
    async with httpx.AsyncClient(timeout=120, event_hooks={'request': [on_request]}) as http:
        logouts = [asyncio.create_task(http.get(f'{server.url}/logout', cookies={'session': c})) for c in busy]
        await sent.wait()
        board = asyncio.create_task(http.get(f'{server.url}/b/{slug}', cookies={'session': viewer}))
        await asyncio.sleep(LONG_WRITE_SECONDS)  # the long write's duration: the scenario, not a wait for something
        long_write.rollback()
        response = await board
        await asyncio.gather(*logouts)
    return response
