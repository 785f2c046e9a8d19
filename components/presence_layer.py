"""Cursors and faces of everyone on a board. A board's changes are pushed as soon as they may be (see agor.presence):
each open page gets only the entries that changed since the board's last push, through one method call, serialised once
per push for all of the board's pages."""
from __future__ import annotations

import asyncio
import json
from collections.abc import Callable
from typing import Any

from nicegui import app, ui

from agor.models import User
from agor.presence import BoardPush, presence

Snapshot = tuple[dict[str, Any], ...]


class PresenceLayer(ui.element, component='presence_layer.js'):
    """Lives inside the BoardCanvas (its slot sits in the canvas's world layer). Its `peers` prop is the board as it
    was when the page was built; pushes patch the browser's copy from there."""

    def __init__(self, me: str, snapshot: Snapshot, on_faces: Callable[[Snapshot], None]) -> None:
        super().__init__()
        self._props['me'] = me
        self._props['peers'] = snapshot
        self.on_faces = on_faces
        self.faces_key: tuple = ()
        self._faces(snapshot, faces_key(snapshot))

    def show(self, push: BoardPush, args: str, key: tuple) -> None:
        """`args`: the push's changes as JSON (what `run_method('patch', changed, gone)` would make on every page);
        `key`: the push's `faces_key`, made once for all of the board's pages."""
        self.client.run_javascript(f'return runMethod({self.id}, "patch", {args})')
        self._faces(push.snapshot, key)

    def _faces(self, snapshot: Snapshot, key: tuple) -> None:
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
    client.on_disconnect(lambda: presence.leave(conn))
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


def push(board_id: str) -> None:
    """One board's changes to each page open on it."""
    change = presence.take(board_id)
    if change is None:
        return
    args = json.dumps([change.changed, change.gone], separators=(',', ':'))  # compact, as NiceGUI sends
    key = faces_key(change.snapshot)
    for layer in list(_layers.get(board_id, {}).values()):
        if not layer.is_deleted:
            layer.show(change, args, key)


def start() -> None:
    loop = asyncio.get_running_loop()
    presence.schedule = lambda board_id, wait: loop.call_later(wait, push, board_id)
    app.timer(1.0, presence.sweep)
