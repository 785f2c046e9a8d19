"""Forwarded headers are believed only from AGOR_TRUSTED_PROXIES: for the websocket's same-origin check (the real app)
and for the client address the login throttle counts (the middleware in front of a real Starlette app)."""
from __future__ import annotations

import asyncio

import httpx
import pytest
import websockets
from starlette.applications import Starlette
from starlette.requests import Request
from starlette.responses import JSONResponse
from starlette.routing import Route

from agor.proxies import TrustedProxyHeaders, parse_networks

from .app_server import running_app


async def _websocket_status(url: str, origin: str, **headers: str) -> int:
    """The HTTP status the websocket handshake got: 101 when it opened, 403 when the app refused it."""
    ws_url = url.replace('http://', 'ws://') + '/_nicegui_ws/socket.io/?EIO=4&transport=websocket'
    try:
        async with websockets.connect(ws_url, origin=origin, additional_headers=headers):
            return 101
    except websockets.InvalidStatus as refused:
        return refused.response.status_code


def test_a_forged_forwarded_host_from_a_non_proxy_is_refused_on_the_websocket(tmp_path):
    with running_app(tmp_path / 'app') as server:
        forged = {'X-Forwarded-Host': 'evil.example', 'X-Forwarded-Proto': 'http'}
        assert asyncio.run(_websocket_status(server.url, 'http://evil.example', **forged)) == 403  # refused
        handshake = f'{server.url}/_nicegui_ws/socket.io/?EIO=4&transport=polling'
        assert httpx.get(handshake, headers={'Origin': 'http://evil.example', **forged}).status_code == 400
        assert asyncio.run(_websocket_status(server.url, server.url)) == 101


def test_allowed_origins_add_to_the_apps_own(tmp_path):
    with running_app(tmp_path / 'app', AGOR_ALLOWED_ORIGINS='https://portal.example.com/') as server:
        assert asyncio.run(_websocket_status(server.url, 'https://portal.example.com')) == 101
        assert asyncio.run(_websocket_status(server.url, server.url)) == 101  # still its own origin
        assert asyncio.run(_websocket_status(server.url, 'http://evil.example')) == 403
        assert asyncio.run(_websocket_status(server.url, 'null')) == 403


def test_a_trusted_proxy_forwards_the_public_origin(tmp_path):
    """Behind a proxy at 127.0.0.1 (the test plays it) serving https://agor.example.com."""
    with running_app(tmp_path / 'app', AGOR_TRUSTED_PROXIES='127.0.0.1') as server:
        public = {'X-Forwarded-Host': 'agor.example.com', 'X-Forwarded-Proto': 'https'}
        assert asyncio.run(_websocket_status(server.url, 'https://agor.example.com', **public)) == 101
        assert asyncio.run(_websocket_status(server.url, 'http://evil.example', **public)) == 403


async def _echo(request: Request) -> JSONResponse:
    return JSONResponse({'client': request.client.host if request.client else None, 'url': str(request.url)})


@pytest.mark.parametrize('trusted, headers, expected', [
    ('', {'X-Forwarded-For': '203.0.113.7', 'X-Forwarded-Host': 'evil.example', 'X-Forwarded-Proto': 'https'},
     {'client': '127.0.0.1', 'url': 'http://agor.internal/who'}),
    ('127.0.0.1', {'X-Forwarded-For': '203.0.113.7', 'X-Forwarded-Host': 'agor.example.com',
                   'X-Forwarded-Proto': 'https'},
     {'client': '203.0.113.7', 'url': 'https://agor.example.com/who'}),
    # a client's own X-Forwarded-For entry, appended to by two trusted proxies: the nearest untrusted one counts
    ('127.0.0.1, 10.0.0.0/8', {'X-Forwarded-For': '198.51.100.1, 203.0.113.7, 10.1.2.3'},
     {'client': '203.0.113.7', 'url': 'http://agor.internal/who'}),
    ('10.0.0.0/8', {'X-Forwarded-For': '203.0.113.7'}, {'client': '127.0.0.1', 'url': 'http://agor.internal/who'}),
])
async def test_the_client_address_comes_from_forwarded_headers_only_via_trusted_proxies(trusted, headers, expected):
    app = TrustedProxyHeaders(Starlette(routes=[Route('/who', _echo)]), trusted=parse_networks(trusted))
    transport = httpx.ASGITransport(app=app, client=('127.0.0.1', 40000))
    async with httpx.AsyncClient(transport=transport, base_url='http://agor.internal') as client:
        assert (await client.get('/who', headers=headers)).json() == expected


def test_a_bad_trusted_proxy_setting_stops_the_start():
    with pytest.raises(SystemExit, match='AGOR_TRUSTED_PROXIES is a comma-separated list'):
        parse_networks('127.0.0.1, proxy.example')
