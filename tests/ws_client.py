"""A browser's side of a NiceGUI page without a browser, for tests and benchmarks that need many clients or forged
events: a logged-in session cookie, the page load, the socket.io handshake, the element tree as the server's
`update` messages change it, the notices shown, and events sent exactly as the browser sends them (or as a forger
would: any listener of any element the page holds, whatever the UI shows or enables).

The login is a real one (`tests.app_server.login_cookie`), kept where the login page keeps it.
"""
from __future__ import annotations

import ast
import asyncio
import json
import re
import time
import urllib.parse
import uuid
from collections.abc import Callable
from typing import Any

import httpx
import socketio

from .app_server import AppServer

ELEMENTS = re.compile(r'parseElements\(String\.raw`(.*?)`\)', re.DOTALL)
QUERY = re.compile(r'query: (\{.*?\}),\n')


def socket_query(html: str) -> dict[str, str]:
    """The socket.io query a page's own script would connect with, for a new tab."""
    query = ast.literal_eval(QUERY.search(html).group(1))  # a Python dict repr in the page
    query.update(document_id=str(uuid.uuid4()), tab_id=str(uuid.uuid4()), old_tab_id='')
    query['implicit_handshake'] = str(query['implicit_handshake']).lower()
    return query


async def connect_page(sio: socketio.AsyncClient, server: AppServer, cookie: str, html: str) -> str:
    """Connect `sio` as the page `html` would (a new tab of the browser with `cookie`); its NiceGUI client id."""
    query = socket_query(html)
    await sio.connect(f'{server.url}?{urllib.parse.urlencode(query)}', socketio_path='/_nicegui_ws/socket.io',
                      transports=['websocket'], headers={'Cookie': f'session={cookie}', 'Origin': server.url},
                      wait_timeout=15)
    return query['client_id']


class WsPage:
    """One open page of one browser (cookie). `open` loads it and connects; `fire` sends an element's event."""

    def __init__(self, server: AppServer, cookie: str) -> None:
        self.server, self.cookie = server, cookie
        self.elements: dict[str, dict[str, Any]] = {}
        self.notices: list[str] = []
        self.warnings: list[str] = []  # the notices that are not confirmations (type `positive`)
        self.navigations: list[str] = []
        self.scripts: list[str] = []  # every script the server ran in the page (run_method: canvas and presence patches)
        self.client_id = ''
        self.closed = False  # the server asked this tab to reload (its page is being dropped)
        self.update_listeners: list[Callable[[dict[str, Any]], None]] = []  # e.g. a benchmark's receipt clock
        self.sio = socketio.AsyncClient(reconnection=False)
        self.sio.on('update', self._on_update)
        self.sio.on('notify', self._on_notify)
        self.sio.on('open', lambda data: self.navigations.append(str(data.get('path', ''))))
        self.sio.on('run_javascript', self._on_javascript)
        self._changed = asyncio.Event()

    async def load(self, http: httpx.AsyncClient, path: str) -> httpx.Response:
        """GET the page as this browser (no redirects followed)."""
        return await http.get(f'{self.server.url}{path}', cookies={'session': self.cookie}, follow_redirects=False)

    async def open(self, http: httpx.AsyncClient, path: str) -> WsPage:
        response = await self.load(http, path)
        if response.status_code != 200:
            raise AssertionError(f'{path}: HTTP {response.status_code} {response.headers.get("location")}')
        self.elements = json.loads(ELEMENTS.search(response.text).group(1))
        self.client_id = await connect_page(self.sio, self.server, self.cookie, response.text)
        return self

    async def close(self) -> None:
        if self.sio.connected:
            await self.sio.disconnect()

    # ---- what the server sends -----------------------------------------------------------------------------------

    def _on_notify(self, data: dict[str, Any]) -> None:
        self.notices.append(str(data.get('message', '')))
        if data.get('type') != 'positive':
            self.warnings.append(self.notices[-1])
        self._changed.set()

    def _on_update(self, data: dict[str, Any]) -> None:
        for key, element in data.items():
            if key == '_id':
                continue
            if element is None:
                self.elements.pop(str(key), None)
            else:
                self.elements[str(key)] = element
        self._changed.set()
        for listener in self.update_listeners:
            listener(data)

    async def _on_javascript(self, data: dict[str, Any]) -> None:
        """Answer what the server awaits (e.g. the canvas's view centre) as a browser with nothing special would."""
        self.scripts.append(str(data.get('code', '')))
        self._changed.set()
        if 'location.reload' in data.get('code', ''):
            self.closed = True
        if data.get('request_id') and self.sio.connected:
            await self.sio.emit('javascript_response', {'client_id': self.client_id, 'request_id': data['request_id'],
                                                        'result': None})

    # ---- finding elements ------------------------------------------------------------------------------------------

    def find(self, *, label: str | None = None, text: str | None = None, event: str | None = None,
             tag: str | None = None, prop: tuple[str, Any] | None = None) -> list[str]:
        """Ids of elements matching every given condition, oldest first (a dialog opened again comes last)."""
        found = []
        for id_, element in self.elements.items():
            props = element.get('props', {})
            if label is not None and props.get('label') != label:
                continue
            if text is not None and element.get('text') != text:
                continue
            if tag is not None and element.get('tag') != tag:
                continue
            if prop is not None and props.get(prop[0]) != prop[1]:
                continue
            if event is not None and not any(e['type'] == event for e in element.get('events', [])):
                continue
            found.append(id_)
        return sorted(found, key=int)

    def one(self, **conditions: Any) -> str:
        found = self.find(**conditions)
        if not found:
            raise LookupError(f'no element {conditions} on the page')
        return found[-1]

    async def wait_for(self, check: Callable[[], Any], timeout: float = 10, poll: float = 0.25) -> Any:
        """`check()` once it is truthy: tried after every message from the server, and every `poll` seconds."""
        deadline = time.monotonic() + timeout
        while True:
            result = check()
            if result:
                return result
            if time.monotonic() > deadline:
                raise TimeoutError('condition not met in time')
            await self.changed(poll)

    async def changed(self, timeout: float) -> None:
        """Until the next message from the server, or `timeout` seconds."""
        self._changed.clear()
        try:
            await asyncio.wait_for(self._changed.wait(), timeout=timeout)
        except TimeoutError:
            pass

    async def wait_element(self, timeout: float = 10, newer_than: int = -1, **conditions: Any) -> str:
        """The newest element matching `conditions` (and built after element `newer_than`), once there is one."""
        return await self.wait_for(lambda: next((i for i in reversed(self.find(**conditions))
                                                 if int(i) > newer_than), None), timeout)

    async def opened(self, action: Callable[[], Any], timeout: float = 30, **conditions: Any) -> str:
        """Run `action` (which makes the server build something: a dialog, an editor) and wait for the element
        matching `conditions` that it built (a handler that first reads who acts waits for a worker thread, which
        a loaded machine's busy pool can delay by seconds)."""
        before = max(map(int, self.elements), default=-1)
        await action()
        return await self.wait_element(timeout, newer_than=before, **conditions)

    # ---- what the browser sends ------------------------------------------------------------------------------------

    async def fire(self, element_id: str, event: str, args: Any = None) -> None:
        """Send `event` of the element as the browser does (args as a JSON string), to every listener of that type."""
        listeners = [e['listener_id'] for e in self.elements[element_id].get('events', []) if e['type'] == event]
        if not listeners:
            raise LookupError(f'element {element_id} has no {event} listener')
        for listener in listeners:
            await self.emit(element_id, listener, args)

    async def emit(self, element_id: str, listener_id: str, args: Any = None) -> None:
        await self.sio.emit('event', {'id': int(element_id), 'client_id': self.client_id, 'listener_id': listener_id,
                                      'args': [] if args is None else [json.dumps(args)]})

    def listener(self, element_id: str, event: str) -> str:
        return next(e['listener_id'] for e in self.elements[element_id].get('events', []) if e['type'] == event)
