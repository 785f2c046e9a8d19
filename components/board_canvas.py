from __future__ import annotations

import weakref
from typing import Any

from nicegui import ui
from nicegui.events import GenericEventArguments, Handler

from agor import canvas
from agor.events import BoardEvent, topic

from .listen import listen

_open: dict[str, weakref.WeakSet[BoardCanvas]] = {}  # board id -> its canvases on open pages


class BoardCanvas(ui.element, component='board_canvas.js'):
    """Pan/zoom canvas of zones and worktree cards, drawn in the browser from props.

    It hears its board's events itself: `apply` updates the props quietly and sends the browser a small patch, so a
    move costs one small message per viewer however many cards the board has. Deleting it stops that. A board's open
    canvases hold one copy of its cards and zones between them: events hand every canvas the same dict, and a new
    canvas takes the dicts an open one holds where they are equal (`_shared`).
    """

    def __init__(self, board_id: str, state: dict[str, Any], *, pins: list[dict[str, Any]], readonly: bool) -> None:
        super().__init__()
        # tuples: NiceGUI wraps lists and dicts in props into observable copies; these stay plain (and shared with
        # every other viewer when they come from the same event)
        self.board_id = board_id
        self._props['zones'] = self._shared('zones', state['zones'])
        self._props['cards'] = self._shared('cards', state['cards'])
        self._props['pins'] = tuple(pins)
        self._props['readonly'] = readonly
        self._props['geometry'] = {'card_w': canvas.CARD_W, 'card_h': canvas.CARD_H, 'zone_min': canvas.ZONE_MIN}
        self.classes('w-full h-full')
        listen(self, topic('board', board_id), self.apply)
        _open.setdefault(board_id, weakref.WeakSet()).add(self)

    def _shared(self, key: str, items: list[dict[str, Any]]) -> tuple[dict[str, Any], ...]:
        """`items`, each replaced by the equal dict another open canvas of the board holds (they are never changed in
        place: a change replaces the dict)."""
        other = next(iter(_open.get(self.board_id, ())), None)
        if other is None:
            return tuple(items)
        held = {item['id']: item for item in other.props[key]}
        return tuple(held[item['id']] if held.get(item['id']) == item else item for item in items)

    def _handle_delete(self) -> None:
        canvases = _open.get(self.board_id)
        if canvases is not None:
            canvases.discard(self)
            if not canvases:
                del _open[self.board_id]
        super()._handle_delete()

    def apply(self, event: BoardEvent) -> None:
        """Apply a canvas event (`zone`, `zone_deleted`, `card`, `card_removed`) to props and the browser; the board's
        other events are not the canvas's."""
        with self.props.suspend_updates():
            if event['type'] == 'card':
                self._put('cards', event['card'])
            elif event['type'] == 'zone':
                self._put('zones', event['zone'])
            elif event['type'] == 'card_removed':
                self._drop('cards', event['id'])
            elif event['type'] == 'zone_deleted':
                self._drop('zones', event['id'])
            else:
                return
        self.run_method('apply', event)

    def _put(self, key: str, item: dict[str, Any]) -> None:
        self.props[key] = (*(x for x in self.props[key] if x['id'] != item['id']), item)

    def _drop(self, key: str, item_id: str) -> None:
        self.props[key] = tuple(x for x in self.props[key] if x['id'] != item_id)

    def set_pins(self, pins: list[dict[str, Any]]) -> None:
        """Replace the comment pins (a small list: open pinned threads only)."""
        with self.props.suspend_updates():
            self.props['pins'] = tuple(pins)
        self.run_method('apply', {'type': 'pins', 'pins': pins})

    def on_card_move(self, handler: Handler[GenericEventArguments]) -> BoardCanvas:
        return self._on('card_move', handler)

    def on_card_click(self, handler: Handler[GenericEventArguments]) -> BoardCanvas:
        return self._on('card_click', handler)

    def on_zone_change(self, handler: Handler[GenericEventArguments]) -> BoardCanvas:
        return self._on('zone_change', handler)

    def on_zone_click(self, handler: Handler[GenericEventArguments]) -> BoardCanvas:
        return self._on('zone_click', handler)

    def card(self, card_id: str) -> dict[str, Any] | None:
        return next((c for c in self.props['cards'] if c['id'] == card_id), None)

    def zone(self, zone_id: str) -> dict[str, Any] | None:
        return next((z for z in self.props['zones'] if z['id'] == zone_id), None)

    def _on(self, name: str, handler: Handler[GenericEventArguments]) -> BoardCanvas:
        self.on(name, handler)
        return self
