"""The keyboard shortcut sheet of the board (`?`). The keys themselves are handled in board_canvas.js."""
from __future__ import annotations

from nicegui import ui

SHORTCUTS = (
    ('C', 'Comment tool: the next click pins a comment'),
    ('Esc', 'Cancel the tool, stop following, or close the top panel'),
    ('Space + drag', 'Pan the board'),
    ('Ctrl/⌘ +  ·  Ctrl/⌘ −', 'Zoom in · zoom out'),
    ('Ctrl/⌘ 0', 'Zoom to 100%'),
    ('Shift 1', 'Fit the board'),
    ('Tab', 'Go to the next card'),
    ('Arrow keys', 'Move the card (Shift: five times as far); zone rules and triggers apply as for a drag'),
    ('Enter', 'Open the card (it has Move to zone)'),
    ('?', 'This sheet'),
)


def shortcut_sheet() -> None:
    with ui.dialog().props('aria-label="Keyboard shortcuts"') as dialog, \
            ui.card().classes('w-[30rem]').mark('shortcut-sheet'):
        ui.label('Keyboard shortcuts').classes('text-lg font-semibold').props('role=heading aria-level=2')
        with ui.element('dl').classes('grid grid-cols-[auto_1fr] gap-x-4 gap-y-2 text-sm'):
            for keys, what in SHORTCUTS:
                with ui.element('dt').classes('font-mono font-semibold text-slate-800 whitespace-nowrap'):
                    ui.label(keys)
                with ui.element('dd').classes('text-slate-700'):
                    ui.label(what)
        ui.label('Shortcuts wait while you type in a field.').classes('text-xs text-slate-600')
        with ui.row().classes('w-full justify-end'):
            ui.button('Close', on_click=dialog.close).props('flat no-caps')
    dialog.on('hide', dialog.delete)
    dialog.open()
