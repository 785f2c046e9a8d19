"""Forwarded headers (X-Forwarded-For, -Proto, -Host) are believed only from the proxies in AGOR_TRUSTED_PROXIES.

`TrustedProxyHeaders` is a plain ASGI middleware in front of everything, websockets included. For a connection from a
trusted proxy it makes the request what the proxy forwarded: the client address (the nearest address in
X-Forwarded-For that is not itself a trusted proxy), the scheme and the Host header, keeping a single
X-Forwarded-Proto for engine.io. From anyone else all forwarded headers are dropped. So engine.io's same-origin check
on the websocket, request URLs, and the address the login throttle counts see only what a client cannot forge.
"""
from __future__ import annotations

import ipaddress
from collections.abc import Awaitable, Callable
from typing import Any

Network = ipaddress.IPv4Network | ipaddress.IPv6Network
FORWARDED = {b'x-forwarded-for', b'x-forwarded-proto', b'x-forwarded-host', b'x-forwarded-port', b'forwarded'}


def parse_networks(text: str) -> list[Network]:
    """`127.0.0.1, 10.0.0.0/8` -> networks; a clear error for anything else."""
    try:
        return [ipaddress.ip_network(item.strip(), strict=False) for item in text.split(',') if item.strip()]
    except ValueError as error:
        raise SystemExit(f'AGOR_TRUSTED_PROXIES is a comma-separated list of addresses or networks: {error}') from None


def is_trusted(address: str | None, trusted: list[Network]) -> bool:
    try:
        ip = ipaddress.ip_address(address or '')
    except ValueError:
        return False
    return any(ip in network for network in trusted)


class TrustedProxyHeaders:
    def __init__(self, app: Callable[..., Awaitable[None]], trusted: list[Network]) -> None:
        self.app = app
        self.trusted = trusted

    async def __call__(self, scope: dict[str, Any], receive: Callable, send: Callable) -> None:
        if scope['type'] in {'http', 'websocket'}:
            scope = self.rewrite(scope)
        await self.app(scope, receive, send)

    def rewrite(self, scope: dict[str, Any]) -> dict[str, Any]:
        headers = [(name, value) for name, value in scope.get('headers', []) if name not in FORWARDED]
        peer = scope['client'][0] if scope.get('client') else None
        if not is_trusted(peer, self.trusted):
            return {**scope, 'headers': headers}
        forwarded = _values(scope.get('headers', []))
        scope = dict(scope)
        chain = forwarded.get(b'x-forwarded-for', [])
        client = next((a for a in reversed(chain) if not is_trusted(a, self.trusted)), chain[0] if chain else None)
        if client:
            scope['client'] = (client, 0)
        if forwarded.get(b'x-forwarded-host'):
            host = forwarded[b'x-forwarded-host'][-1]
            headers = [(n, v) for n, v in headers if n != b'host'] + [(b'host', host.encode('latin-1'))]
        if forwarded.get(b'x-forwarded-proto'):
            proto = 'https' if forwarded[b'x-forwarded-proto'][-1].lower() in {'https', 'wss'} else 'http'
            scope['scheme'] = {'https': 'wss', 'http': 'ws'}[proto] if scope['type'] == 'websocket' else proto
            headers.append((b'x-forwarded-proto', proto.encode()))  # engine.io reads the scheme only from here
        scope['headers'] = headers
        return scope


def _values(headers: list[tuple[bytes, bytes]]) -> dict[bytes, list[str]]:
    """Each forwarded header's comma-separated entries, in order, over all its occurrences."""
    values: dict[bytes, list[str]] = {}
    for name, value in headers:
        if name in FORWARDED:
            values.setdefault(name, []).extend(v.strip() for v in value.decode('latin-1').split(',') if v.strip())
    return values


def origin_check(extra_origins: list[str]) -> Callable[[str | None, dict[str, Any]], bool]:
    """engine.io's Origin check for the websocket: the app's own origin (its Host header and scheme, as
    `TrustedProxyHeaders` left them) or one of `extra_origins` (AGOR_ALLOWED_ORIGINS adds to the own origin; a plain
    list given to engine.io would replace it)."""
    extra = {origin.rstrip('/') for origin in extra_origins}

    def allowed(origin: str | None, environ: dict[str, Any]) -> bool:
        if not origin:
            return False
        host = environ.get('HTTP_HOST')
        scheme = environ.get('HTTP_X_FORWARDED_PROTO', environ.get('wsgi.url_scheme', 'http'))
        return origin in extra or (host is not None and origin == f'{scheme}://{host}')
    return allowed
