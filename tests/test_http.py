"""The running app over plain HTTP: health, login redirect, the websocket Origin check and its compression."""
import asyncio

import httpx
import websockets

from .app_server import running_app


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
