"""A board's sharing settings: private or not, who its members are, and what others may do with its new worktrees.
Only the board's creator and admins can change them; everyone else sees them read-only with the reason."""
from __future__ import annotations

from collections.abc import Callable
from typing import Any

from nicegui import ui

from agor import boards, comments
from agor.permissions import LEVEL_LABELS

from .act import FAILED, act


async def board_access_dialog(board_id: str, on_saved: Callable[[], Any] | None = None) -> None:
    current = await act(boards.access, board_id)
    if current is FAILED:
        return
    everyone = await act(comments.members)
    if everyone is FAILED:
        return
    people = [p for p in everyone if p['id'] != current['created_by']]
    with ui.dialog() as dialog, ui.card().classes('w-[28rem]').mark('board-access'):
        ui.label('Sharing and permissions').classes('text-lg font-semibold')
        private = ui.switch('Private board', value=current['private']).mark('board-private')
        ui.label('Only its creator, admins and the members checked below see a private board: its name, cards, '
                 'comments and sessions.').classes('text-xs text-slate-600')
        with ui.column().classes('w-full max-h-56 overflow-auto gap-0 pl-2') \
                .bind_visibility_from(private, 'value').mark('board-members'):
            boxes = {p['id']: ui.checkbox(p['name'], value=p['id'] in current['members']) for p in people}
        level = ui.select(LEVEL_LABELS, value=current['others_can'],
                          label='On new worktrees of this board, others may') \
            .props('outlined dense').classes('w-full').mark('board-level')
        ui.label('Each worktree keeps its own level; its owner changes it in the worktree’s card.') \
            .classes('text-xs text-slate-600')
        if current['manage']:
            for control in (private, level, *boxes.values()):
                control.disable()
            ui.label(current['manage']).classes('text-sm text-amber-700').mark('board-access-reason')

        async def save() -> None:
            members = [user_id for user_id, box in boxes.items() if box.value]
            if await act(boards.set_access, board_id, private=bool(private.value), members=members,
                         others_can=level.value, success='Sharing saved') is not FAILED:
                dialog.close()
                if on_saved is not None:
                    on_saved()
        with ui.row().classes('w-full justify-end'):
            ui.button('Close' if current['manage'] else 'Cancel', on_click=dialog.close).props('flat')
            if not current['manage']:
                ui.button('Save', on_click=save).props('unelevated color=teal-8').mark('save-access')
    dialog.open()
