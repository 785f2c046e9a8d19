"""A worktree card, opened: where it is checked out, its notes and links, what others may do with it, its sessions,
and the actions the viewer's level allows (each checked again on the server when used)."""
from __future__ import annotations

from collections.abc import Awaitable, Callable
from typing import Any

from nicegui import ui

from agor import agent_sessions, boards, cluster, permissions, repos
from agor.models import User

from .act import FAILED, act


async def open_card(card: dict[str, Any], *, board_id: str, can_edit: bool,
                    on_session: Callable[[str], Awaitable[None]], zones: dict[str, str],
                    on_move: Callable[[str], Awaitable[None]], on_new_session: Callable[[], None],
                    on_comment: Callable[[], None]) -> None:
    """Read the card's worktree and sessions as the viewer may see them now, then show the dialog. `zones` (id ->
    label) are where "Move to zone" may take it."""
    loaded = await act(_card_data, card['id'])
    if loaded is not FAILED:
        CardDialog(card, *loaded, board_id=board_id, can_edit=can_edit, on_session=on_session, zones=zones,
                   on_move=on_move, on_new_session=on_new_session, on_comment=on_comment).open()


def _card_data(actor: User, worktree_id: str) -> tuple[dict[str, Any], list[dict[str, Any]]]:
    return repos.worktree_details(actor, worktree_id), agent_sessions.for_worktree(actor, worktree_id)


class CardDialog(ui.dialog):
    def __init__(self, card: dict[str, Any], details: dict[str, Any], session_items: list[dict[str, Any]], *,
                 board_id: str, can_edit: bool, on_session: Callable[[str], Awaitable[None]], zones: dict[str, str],
                 on_move: Callable[[str], Awaitable[None]], on_new_session: Callable[[], None],
                 on_comment: Callable[[], None]) -> None:
        super().__init__()
        self.card, self.board_id = card, board_id
        rights = details['rights']
        with self, ui.card().classes('w-[28rem]').mark('card-dialog'):
            ui.label(card['name']).classes('text-xl font-semibold')
            with ui.row().classes('items-center gap-1 no-wrap font-mono text-sm text-slate-600'):
                ui.icon('call_split', size='16px').props('aria-hidden=true')
                ui.label(f'{card["branch"]} · {card["repo"]}')
            ui.label(details['path']).classes('font-mono text-xs text-slate-600 break-all')
            ui.label(f'Created by {details["created_by"]} · {details["created_at"]:%Y-%m-%d %H:%M} UTC') \
                .classes('text-xs text-slate-600')
            self._details_editor(details)
            self._level_editor(rights)
            ui.label('Sessions').classes('font-semibold mt-2')
            for item in session_items:
                with ui.item(on_click=lambda i=item: self._then(on_session, i['id'])) \
                        .props('dense clickable').classes('w-full rounded').mark('session-item'):
                    with ui.item_section():
                        ui.item_label(item['title'])
                        ui.item_label(f'{item["runtime_label"]} · {item["status_label"]} · {item["creator"]}') \
                            .props('caption')
            if can_edit:
                ui.button('New session', icon='smart_toy', on_click=lambda: self._then(on_new_session)) \
                    .props('flat no-caps color=teal-8').mark('new-session').set_enabled(rights['start'] is None)
                if rights['start']:
                    ui.label(rights['start']).classes('text-xs text-amber-700').mark('start-reason')
            with ui.row().classes('w-full justify-end'):
                ui.button('Terminal', icon='terminal',
                          on_click=lambda: ui.navigate.to(cluster.terminal_path(card['id']), new_tab=True)) \
                    .props('flat no-caps').mark('open-terminal')
                if can_edit and zones:
                    with ui.button('Move to zone', icon='move_down').props('flat no-caps').mark('move-to-zone'):
                        with ui.menu():
                            for zone_id, label in zones.items():
                                ui.menu_item(label, lambda z=zone_id: self._then(on_move, z))
                if can_edit:
                    ui.button('Comment', icon='add_comment', on_click=lambda: self._then(on_comment)) \
                        .props('flat no-caps')
                    for label, handler, color in (('Remove from board', self._remove, 'primary'),
                                                  ('Archive', self._archive, 'orange')):
                        ui.button(label, on_click=handler).props(f'flat no-caps color={color}') \
                            .set_enabled(rights['edit'] is None)
                ui.button('Close', on_click=self.close).props('flat no-caps')
            if can_edit and rights['edit']:
                ui.label(rights['edit']).classes('text-xs text-amber-700').mark('edit-reason')

    async def _then(self, action: Callable[..., Any], *args: Any) -> None:
        """Close the dialog, then do what was chosen (open a session, start one, write a comment)."""
        self.close()
        result = action(*args)
        if isinstance(result, Awaitable):
            await result

    async def _remove(self) -> None:
        if await act(boards.remove_card, self.board_id, self.card['id']) is not FAILED:
            self.close()

    async def _archive(self) -> None:
        if await act(repos.set_archived, self.card['id'], True, success=f'{self.card["name"]} archived') is not FAILED:
            self.close()

    def _level_editor(self, rights: dict[str, Any]) -> None:
        """What others may do with the worktree: its owner and admins choose; everyone sees it and their own level."""
        with ui.row().classes('w-full items-center gap-2 no-wrap'):
            level = ui.select(permissions.LEVEL_LABELS, value=rights['others_can'], label='Others may') \
                .props('outlined dense').classes('grow').mark('worktree-level')
            ui.badge(f'you: {rights["level"]}', color='teal-8').props('outline').mark('my-level') \
                .tooltip(permissions.LEVEL_LABELS[rights['level']])
        if rights['set_level']:
            level.disable()
            ui.label(rights['set_level']).classes('text-xs text-slate-600').mark('level-reason')
            return

        async def changed(e: Any) -> None:
            if await act(repos.set_level, self.card['id'], e.value, success='Permissions saved') is FAILED:
                level.set_value(rights['others_can'])
        level.on_value_change(changed)

    def _details_editor(self, details: dict[str, Any]) -> None:
        """Notes and the issue and pull request links: editable with `all`, read by everyone (and by templates)."""
        editable = details['rights']['edit'] is None
        with ui.expansion('Notes and links', icon='notes', value=bool(details['notes'])) \
                .classes('w-full border rounded').mark('worktree-details'):
            notes = ui.textarea('Notes', value=details['notes']).props('outlined autogrow dense').classes('w-full')
            issue = ui.input('Issue link', value=details['issue_url']).props('outlined dense').classes('w-full')
            pr = ui.input('Pull request link', value=details['pr_url']).props('outlined dense').classes('w-full')
            for field in (notes, issue, pr):
                field.set_enabled(editable)
            if editable:
                ui.button('Save notes and links', on_click=lambda: act(
                    repos.update_worktree_details, self.card['id'], notes=notes.value or '',
                    issue_url=issue.value or '', pr_url=pr.value or '', success='Saved')) \
                    .props('flat no-caps color=teal-8')
