"""Forwarded headers are believed only from AGOR_TRUSTED_PROXIES: for the websocket's same-origin check (the real app)
and for the client address the login throttle counts (the middleware in front of a real Starlette app)."""
from __future__ import annotations

import asyncio
import ipaddress

import httpx
import pytest
import websockets
from starlette.applications import Starlette
from starlette.requests import Request
from starlette.responses import JSONResponse
from starlette.routing import Route

from agor.proxies import TrustedProxyHeaders, origin_check, parse_networks

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


@pytest.mark.parametrize('kind', ['http', 'websocket'])
@pytest.mark.parametrize('peer', [('203.0.113.9', 5000), None, ('not-an-address', 0)])
async def test_what_the_app_receives_from_a_peer_that_is_not_a_proxy(kind, peer):
    """The app behind the middleware gets the request without any forwarded header, its own client and host, and
    the same body, whether the peer is an address, none (a unix socket) or something unparsable."""
    seen = []

    async def app(scope, receive, send):
        seen.append((scope, await receive()))
    forged = [(b'x-forwarded-for', b'10.0.0.1'), (b'x-forwarded-host', b'evil.example'), (b'forwarded', b'for=x'),
              (b'x-forwarded-proto', b'https'), (b'x-forwarded-port', b'443')]
    own = [(b'host', b'agor.internal'), (b'origin', b'http://evil.example')]

    async def receive():
        return {'type': f'{kind}.request' if kind == 'http' else 'websocket.connect', 'body': b'form'}
    await TrustedProxyHeaders(app, parse_networks('127.0.0.1, ::1'))(
        {'type': kind, 'client': peer, 'scheme': 'http' if kind == 'http' else 'ws', 'headers': own + forged},
        receive, None)
    (scope, message), = seen
    assert scope['headers'] == own and scope['client'] == peer and scope['scheme'] in {'http', 'ws'}
    assert message == await receive()



async def _through(trusted: str, kind: str, headers: list[tuple[bytes, bytes]]) -> dict:
    """The scope the app behind the middleware receives from the peer 127.0.0.1."""
    seen = []

    async def app(scope, receive, send):
        seen.append(scope)
    scheme = 'http' if kind == 'http' else 'ws'
    await TrustedProxyHeaders(app, parse_networks(trusted))(
        {'type': kind, 'client': ('127.0.0.1', 5000), 'scheme': scheme, 'headers': [(b'host', b'agor.internal')] +
         headers}, None, None)
    return seen[0]


@pytest.mark.parametrize('kind, proto, scheme, forwarded_proto', [
    ('websocket', b'WSS', 'wss', b'https'), ('websocket', b'https', 'wss', b'https'),
    ('websocket', b'http', 'ws', b'http'), ('http', b'https', 'https', b'https'), ('http', b'ws', 'http', b'http')])
async def test_what_the_app_receives_via_a_proxy(kind, proto, scheme, forwarded_proto):
    """From a trusted proxy: the client is the nearest untrusted X-Forwarded-For entry, the Host is the forwarded
    one, the scheme follows X-Forwarded-Proto (ws/wss on a websocket), and exactly one X-Forwarded-Proto is left (what
    engine.io reads); every other forwarded header is dropped."""
    scope = await _through('127.0.0.1, 10.0.0.0/8', kind, [
        (b'x-forwarded-for', b'198.51.100.1'), (b'x-forwarded-for', b'203.0.113.7, 10.1.2.3'),
        (b'x-forwarded-host', b'evil.example, agor.example.com'), (b'x-forwarded-proto', b'http, ' + proto),
        (b'x-forwarded-port', b'443')])
    assert scope['client'][0] == '203.0.113.7' and scope['scheme'] == scheme
    assert scope['headers'] == [(b'host', b'agor.example.com'), (b'x-forwarded-proto', forwarded_proto)]


@pytest.mark.parametrize('headers, client', [
    ([(b'x-forwarded-for', b'10.0.0.5, 10.0.0.6')], '10.0.0.5'),  # all proxies: the farthest one is the client
    ([(b'x-forwarded-proto', b'https')], '127.0.0.1'),  # no X-Forwarded-For: the peer itself
])
async def test_the_client_via_a_proxy_chain_of_trusted_addresses_only(headers, client):
    scope = await _through('127.0.0.1, 10.0.0.0/8', 'http', headers)
    assert scope['client'][0] == client and (b'host', b'agor.internal') in scope['headers']


def test_trusted_proxy_list_takes_networks_with_host_bits_and_explains_bad_entries():
    assert parse_networks(' 10.1.2.3/8 , ::1,') == [ipaddress.ip_network('10.0.0.0/8'), ipaddress.ip_network('::1')]
    with pytest.raises(ValueError) as refused:
        parse_networks('10.0.0.0/8, proxy.example')
    assert str(refused.value).startswith('a comma-separated list of addresses or networks (')


@pytest.mark.parametrize('origin, environ, allowed', [
    ('http://agor.internal', {'HTTP_HOST': 'agor.internal', 'wsgi.url_scheme': 'http'}, True),
    ('https://agor.internal', {'HTTP_HOST': 'agor.internal', 'wsgi.url_scheme': 'http'}, False),
    ('http://agor.internal', {'HTTP_HOST': 'agor.internal'}, True),  # no scheme given: http
    ('https://agor.internal', {'HTTP_HOST': 'agor.internal', 'wsgi.url_scheme': 'https'}, True),  # served over TLS
    ('https://agor.example.com', {'HTTP_HOST': 'agor.example.com', 'HTTP_X_FORWARDED_PROTO': 'https',
                                  'wsgi.url_scheme': 'http'}, True),  # what the middleware left from a proxy
    ('http://agor.example.com', {'HTTP_HOST': 'agor.example.com', 'HTTP_X_FORWARDED_PROTO': 'https',
                                 'wsgi.url_scheme': 'http'}, False),
    ('http://evil.example', {'HTTP_HOST': 'agor.internal', 'wsgi.url_scheme': 'http'}, False),
    ('https://portal.example.com', {'HTTP_HOST': 'agor.internal', 'wsgi.url_scheme': 'http'}, True),  # listed
    ('https://portal.example.com', {}, True),
    ('http://None', {}, False),  # no Host header: only the listed origins
    ('null', {'HTTP_HOST': 'agor.internal'}, False),
    ('', {'HTTP_HOST': 'agor.internal'}, False),
    (None, {'HTTP_HOST': 'agor.internal'}, False),
])
def test_the_websocket_origin_check(origin, environ, allowed):
    """engine.io's check: the app's own origin (Host and scheme as the middleware left them) or a listed one."""
    assert origin_check(['https://portal.example.com/'])(origin, environ) is allowed
