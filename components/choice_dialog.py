"""A small dialog that picks several of a list and saves the choice: a session's MCP servers and its variables."""
from __future__ import annotations

from collections.abc import Awaitable, Callable
from typing import Any

from nicegui import ui


def choose_many(*, title: str, mark: str, options: dict[str, str] | list[str], selected: list[str], label: str,
                empty: str, save: Callable[[list[str]], Awaitable[bool]],
                after: Callable[[], Any] | None = None) -> None:
    """Open the dialog: `empty` is said when there is nothing to pick, `after` draws notes under the select, and
    `save` gets the chosen values (True closes the dialog). Marks: `<mark>-dialog` and `save-<mark>`."""
    with ui.dialog() as dialog, ui.card().classes('w-96').mark(f'{mark}-dialog'):
        ui.label(title).classes('text-lg font-semibold')
        if not options:
            ui.label(empty).classes('text-sm text-slate-500')
        chosen = ui.select(options, value=selected, multiple=True, label=label) \
            .props('outlined use-chips').classes('w-full')
        if after:
            after()

        async def on_save() -> None:
            if await save(list(chosen.value or [])):
                dialog.close()
        with ui.row().classes('w-full justify-end'):
            ui.button('Cancel', on_click=dialog.close).props('flat')
            ui.button('Save', on_click=on_save).props('unelevated color=teal').mark(f'save-{mark}')
    dialog.open()
