"""The list on a settings page (keys, variables): redrawn from what the server holds for the user as they are now."""
from __future__ import annotations

from collections.abc import Callable
from typing import Any

from nicegui import ui

from ..act import FAILED, act


async def refill(container: ui.element, load: Callable[..., list], row: Callable[[Any], None], empty: str) -> None:
    """`container` redrawn with a `row` per item `load` returns (through `act`), or `empty` when there are none; a
    load that failed (its message shown by `act`) leaves it as it was."""
    items = await act(load)
    if items is FAILED:
        return
    container.clear()
    with container:
        if not items:
            ui.label(empty).classes('text-sm text-slate-600')
        for item in items:
            row(item)
