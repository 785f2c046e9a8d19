"""Cursors and faces of everyone on a board, pushed by one timer per process (never per event)."""
from __future__ import annotations

from collections.abc import Callable
from typing import Any

from nicegui import app, ui

from agor.models import User
from agor.presence import presence

FAN_OUT_INTERVAL = 0.1
Snapshot = tuple[dict[str, Any], ...]


class PresenceLayer(ui.element, component='presence_layer.js'):
    """Lives inside the BoardCanvas (its slot sits in the canvas's world layer)."""

    def __init__(self, me: str, on_faces: Callable[[Snapshot], None]) -> None:
        super().__init__()
        self._props['me'] = me
        self._props['peers'] = ()
        self.on_faces = on_faces
        self.faces_key: tuple = ()

    def show(self, snapshot: Snapshot) -> None:
        self.props['peers'] = snapshot
        key = tuple((p['conn'], p['state'], p['following'], p['label']) for p in snapshot)
        if key != self.faces_key:
            self.faces_key = key
            self.on_faces(snapshot)


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


def fan_out() -> None:
    """One snapshot per changed board, one prop update per viewer of it."""
    for board_id in presence.take_dirty():
        snapshot = tuple(presence.board_snapshot(board_id))
        for layer in list(_layers.get(board_id, {}).values()):
            if not layer.is_deleted:
                layer.show(snapshot)


def start() -> None:
    app.timer(FAN_OUT_INTERVAL, fan_out)
    app.timer(1.0, presence.sweep)
