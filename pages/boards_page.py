"""The list of boards: open, create, rename, delete."""
from __future__ import annotations

import json

from nicegui import ui

from agor import boards
from agor.config import Settings
from agor.models import Role, User

from components import board_icon
from components.act import FAILED, act
from components.board_access import board_access_dialog

from .frame import confirm_delete, dialog_actions, header, page


def register(settings: Settings) -> None:
    page('/', settings, title='Boards · Agor')(boards_page)


async def boards_page(user: User, settings: Settings, left: str | None = None) -> None:
    """`?left=access`: the board this user had open was closed to them (which one is not said)."""
    header(user, settings)
    can_edit = user.has(Role.member)  # what to show; every action is checked again as the user is then
    if left == 'access':
        ui.label('You no longer have access to the board you had open.') \
            .classes('w-full text-center bg-amber-50 text-amber-800 py-2').mark('left-board')

    @ui.refreshable
    async def board_grid() -> None:
        items = await act(boards.list_boards)
        if items is FAILED:
            return
        if not items:
            ui.label('No boards yet.').classes('text-slate-600')
        with ui.row().classes('gap-4 flex-wrap'):
            for item in items:
                with ui.card().classes('w-72 cursor-pointer hover:shadow-lg').on(
                        'click', lambda _, slug=item['slug']: ui.navigate.to(f'/b/{slug}')):
                    with ui.row().classes('w-full items-center no-wrap'):
                        ui.icon(board_icon(item['icon']), size='28px', color='teal-8')
                        ui.label(item['name']).classes('text-lg font-semibold grow truncate')
                        if item['private']:
                            ui.icon('lock', color='grey-7').tooltip('Private: only its members see it') \
                                .mark(f'private-{item["slug"]}')
                        if can_edit:
                            with ui.button(icon='more_vert').on('click.stop', lambda: None) \
                                    .props(f'flat round dense aria-label={json.dumps("Actions for " + item["name"])}'):
                                with ui.menu():
                                    ui.menu_item('Rename', lambda i=item: rename_dialog(i)).mark(f'rename-{item["slug"]}')
                                    ui.menu_item('Sharing and permissions', lambda i=item: board_access_dialog(
                                        i['id'], board_grid.refresh)) \
                                        .mark(f'sharing-{item["slug"]}')
                                    ui.menu_item('Delete', lambda i=item: delete_dialog(i)).mark(f'delete-{item["slug"]}')
                    ui.label(item['description'] or ' ').classes('text-sm text-slate-600 truncate w-full')
                    ui.label(f'{item["cards"]} worktrees · /b/{item["slug"]}').classes('text-xs text-slate-600')

    async def create(name: str, description: str, dialog: ui.dialog) -> None:
        board = await act(boards.create_board, name, description)
        if board is not FAILED:
            dialog.close()
            ui.navigate.to(f'/b/{board.slug}')

    def create_dialog() -> None:
        with ui.dialog() as dialog, ui.card().classes('w-96'):
            ui.label('New board').classes('text-lg font-semibold')
            name = ui.input('Name').props('outlined autofocus').classes('w-full')
            description = ui.input('Description (optional)').props('outlined').classes('w-full')
            dialog_actions(dialog, 'Create', lambda: create(name.value, description.value, dialog))
        dialog.open()

    def rename_dialog(item: dict) -> None:
        with ui.dialog() as dialog, ui.card().classes('w-96'):
            ui.label('Rename board').classes('text-lg font-semibold')
            name = ui.input('Name', value=item['name']).props('outlined autofocus').classes('w-full')
            description = ui.input('Description', value=item['description']).props('outlined').classes('w-full')

            async def save() -> None:
                if await act(boards.update_board, item['id'], name=name.value,
                             description=description.value) is not FAILED:
                    dialog.close()
                    await board_grid.refresh()
            dialog_actions(dialog, 'Save', save)
        dialog.open()

    def delete_dialog(item: dict) -> None:
        confirm_delete(f'Delete board “{item["name"]}”?',
                       'Its zones go away; its worktrees stay and can be placed on another board.',
                       lambda: act(boards.delete_board, item['id'], success='Board deleted'), board_grid.refresh)

    with ui.column().classes('w-full max-w-6xl mx-auto p-6 gap-4'):
        with ui.row().classes('w-full items-center'):
            ui.label('Boards').classes('text-2xl font-bold')
            ui.space()
            if can_edit:
                ui.button('New board', icon='add', on_click=create_dialog).props('unelevated color=teal-8')
        await board_grid()
