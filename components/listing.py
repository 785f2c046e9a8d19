"""A listing (keys, variables, servers, channels, linked accounts): redrawn from what the server holds, read as the
user is now."""
from __future__ import annotations

from collections.abc import Callable
from typing import Any

from nicegui import ui

from .act import FAILED, act


async def refill(container: ui.element, load: Callable[..., Any], row: Callable[[Any], None], empty: str,
                 pick: Callable[[Any], list] = list) -> None:
    """`container` redrawn with a `row` per item of what `load` returns (through `act`; `pick` picks them out of
    it), or `empty` when there are none; a load that failed (its message shown by `act`) leaves it as it was."""
    loaded = await act(load)
    if loaded is FAILED:
        return
    items = pick(loaded)
    container.clear()
    with container:
        if not items:
            ui.label(empty).classes('text-sm text-slate-600')
        for item in items:
            row(item)
