"""Cursors and faces of everyone on a board. A board's changes are pushed as soon as they may be (see agor.presence):
the pages open on it get the fields that changed since the board's last push, as one socket.io message made once
and sent to all of them (not through each page's NiceGUI outbox: presence is ephemeral, and a page that missed a
push while it was away is brought up to date as a whole). A page's first push after it connected (or reconnected)
is the whole board, since it was built from the board as it was between two pushes."""
from __future__ import annotations

import asyncio
import json
from collections.abc import Callable
from typing import Any

from nicegui import app, background_tasks, core, ui

from agor.models import User
from agor.presence import presence

Snapshot = tuple[dict[str, Any], ...]


class PresenceLayer(ui.element, component='presence_layer.js'):
    """Lives inside the BoardCanvas (its slot sits in the canvas's world layer). Its `peers` prop is the board as it
    was when the page was built; pushes patch the browser's copy from there."""

    def __init__(self, me: str, snapshot: Snapshot, on_faces: Callable[[Snapshot], None]) -> None:
        super().__init__()
        self.conn = me
        self._props['me'] = me
        self._props['peers'] = snapshot
        self.synced = False  # whether the browser has had the whole board since it connected
        self.on_faces = on_faces
        self.faces_key: tuple = ()
        self.faces(snapshot, faces_key(snapshot))

    def faces(self, snapshot: Snapshot, key: tuple) -> None:
        """`key`: the snapshot's `faces_key`, made once for all of the board's pages."""
        if key != self.faces_key:
            self.faces_key = key
            self.on_faces(snapshot)


def faces_key(snapshot: Snapshot) -> tuple:
    """What the facepile shows of a board: it is redrawn only when this changes."""
    return tuple((p['conn'], p['state'], p['following'], p['label']) for p in snapshot)


_layers: dict[str, dict[str, PresenceLayer]] = {}


def join(board_id: str, conn: str, user: User, layer: PresenceLayer, allowed: Callable[[], bool]) -> Callable[[], None]:
    """On the board while connected: a closed tab leaves at once, a reconnecting one comes back (while `allowed`).
    Returns how to leave for good."""
    client = layer.client
    _layers.setdefault(board_id, {})[conn] = layer

    def disconnected() -> None:
        layer.synced = False
        presence.leave(conn)
    client.on_disconnect(disconnected)
    client.on_connect(lambda: presence.join(board_id, conn, user) if allowed() else None)

    def gone() -> None:
        presence.leave(conn)
        _detach(board_id, conn)
    client.on_delete(gone)
    return gone


def _detach(board_id: str, conn: str) -> None:
    layers = _layers.get(board_id, {})
    layers.pop(conn, None)
    if not layers:
        _layers.pop(board_id, None)


def push(board_id: str, tick: bool) -> None:
    """One board's changes to each page open on it: the changes to those up to date, the whole board to the others."""
    change = presence.take(board_id, tick)
    if change is None:
        return
    key = faces_key(change.snapshot)
    skip = change.only_about()  # an isolated move is not sent back to the mover's page
    synced: list[str] = []
    for layer in list(_layers.get(board_id, {}).values()):
        if layer.is_deleted:
            continue
        if layer.synced:
            if layer.conn != skip:
                synced.append(layer.client.id)
        elif layer.client.has_socket_connection:
            _send(script('reset', [change.snapshot]), [layer.client.id])
            layer.synced = True
        layer.faces(change.snapshot, key)
    if synced:
        _send(script('patch', [change.changed, change.gone]), synced)


def script(method: str, args: list[Any]) -> str:
    """The call of the page's presence layer (presence_layer.js registers `agorPresence`). An expression, not a
    `return` statement: NiceGUI's browser client evaluates a script as one first, and runs it as a function's body
    only after that failed (a second parse, every push, on every page)."""
    return f'agorPresence("{method}", {json.dumps(args, separators=(",", ":"))})'  # compact, as NiceGUI sends


def _send(code: str, clients: list[str]) -> None:
    """One message to the pages of these NiceGUI clients (each one's sockets are in a room named after it)."""
    background_tasks.create(core.sio.emit('run_javascript', {'code': code}, to=clients), name='presence push')


def start() -> None:
    loop = asyncio.get_running_loop()
    presence.schedule = lambda board_id, wait, tick: loop.call_later(wait, push, board_id, tick)
    app.timer(1.0, presence.sweep)
