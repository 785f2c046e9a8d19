"""Repositories and their worktrees: register, clone, create, archive, restore, delete."""
from __future__ import annotations

from functools import partial

from nicegui import ui

from agor import boards, repos
from agor.config import Settings
from agor.models import Role, User

from components.act import FAILED, act
from components.busy import busy_button
from components.work_progress import WorkProgress

from .frame import confirm_delete, dialog_actions, header, page


def register(settings: Settings) -> None:
    page('/repos', settings, title='Repositories · Agor')(repos_page)


async def repos_page(user: User, settings: Settings) -> None:
    header(user, settings)
    is_member, is_admin = user.has(Role.member), user.has(Role.admin)  # what to show; actions are checked again
    board_list = await act(boards.list_boards)
    board_options = {b['id']: b['name'] for b in board_list} if board_list is not FAILED else {}

    @ui.refreshable
    async def repo_list() -> None:
        listed = await act(_repos_and_worktrees)
        if listed is FAILED:
            return
        items, worktrees = listed
        if not items:
            ui.label('No repositories yet.' + (' Register one above.' if is_admin else '')) \
                .classes('text-slate-600')
        for repo in items:
            with ui.card().classes('w-full'):
                with ui.row().classes('w-full items-center'):
                    ui.label(repo.name).classes('text-lg font-semibold')
                    ui.label(f'{repo.path} · default {repo.default_branch}').classes('text-sm text-slate-600 font-mono')
                    ui.space()
                    if is_member:
                        ui.button('New worktree', icon='add', on_click=lambda r=repo: new_worktree(r.id, r.name)) \
                            .props('flat no-caps')
                worktree_rows(worktrees[repo.id])

    def worktree_rows(items: list[dict]) -> None:
        for item in items:
            with ui.row().classes('w-full items-center gap-3 border-t border-slate-100 pt-2'):
                ui.label(item['name']).classes('font-semibold w-48 truncate')
                with ui.row().classes('items-center gap-1 no-wrap font-mono text-sm text-slate-600 w-56'):
                    ui.icon('call_split', size='16px').props('aria-hidden=true')
                    ui.label(item['branch']).classes('truncate')
                if item['archived']:
                    ui.badge('archived', color='grey-8').props('outline')
                elif item['board_id']:
                    ui.label(f'on {board_options.get(item["board_id"], "a board")}').classes('text-sm text-slate-600')
                ui.space()
                if not is_member:
                    continue
                if item['level'] != 'all':
                    ui.label('placing, archiving and deleting it: its owner, an admin, or whom they allow') \
                        .classes('text-xs text-slate-600')
                    continue
                if item['archived']:
                    ui.button('Restore', on_click=lambda i=item: archive(i['id'], False)).props('flat dense no-caps')
                else:
                    with ui.button('Place on board').props('flat dense no-caps'):
                        with ui.menu():
                            for board_id, label in board_options.items():
                                ui.menu_item(label, lambda b=board_id, i=item: place(b, i['id']))
                    ui.button('Archive', on_click=lambda i=item: archive(i['id'], True)).props('flat dense no-caps')
                ui.button('Delete', on_click=lambda i=item: delete(i)).props('flat dense no-caps color=red-8')

    async def archive(worktree_id: str, archived: bool) -> None:
        if await act(repos.set_archived, worktree_id, archived) is not FAILED:
            await repo_list.refresh()

    async def place(board_id: str, worktree_id: str) -> None:
        if await act(boards.place_card, board_id, worktree_id, 0, 0, success='Placed') is not FAILED:
            await repo_list.refresh()

    def delete(item: dict) -> None:
        confirm_delete(f'Delete worktree {item["name"]}?',
                       f'This removes the checkout at {item["path"]}, uncommitted changes included. '
                       f'The branch {item["branch"]} stays in the repository.',
                       lambda: act(repos.delete_worktree, item['id'], success='Worktree deleted'), repo_list.refresh)

    def new_worktree(repo_id: str, repo_name: str) -> None:
        with ui.dialog() as dialog, ui.card().classes('w-96'):
            ui.label(f'New worktree of {repo_name}').classes('text-lg font-semibold')
            name = ui.input('Name (e.g. auth-fix)').props('outlined autofocus').classes('w-full')
            branch = ui.input('Branch (defaults to the name)').props('outlined').classes('w-full')
            existing = ui.checkbox('Use an existing branch')
            base = ui.input('Start from (defaults to the default branch)').props('outlined').classes('w-full') \
                .bind_visibility_from(existing, 'value', backward=lambda v: not v)
            progress = WorkProgress()

            async def create() -> None:
                with progress.shown():
                    created = await act(partial(repos.create_worktree, settings), repo_id, name.value,
                                        branch.value or None, new_branch=not existing.value, base=base.value or None,
                                        progress=progress.report, success='Worktree created')
                if created is not FAILED:
                    dialog.close()
                    await repo_list.refresh()
            dialog_actions(dialog, 'Create', create)
        dialog.open()

    with ui.column().classes('w-full max-w-6xl mx-auto p-6 gap-4'):
        ui.label('Repositories').classes('text-2xl font-bold')
        if is_admin:
            with ui.card().classes('w-full'):
                ui.label('Register a repository').classes('font-semibold')
                with ui.row().classes('w-full items-end gap-2'):
                    source = ui.input('Local path on the server, or a path/URL to clone').props('outlined') \
                        .classes('grow').mark('repo-source')
                    mode = ui.toggle({'local': 'Use in place', 'clone': 'Clone'}, value='local')

                    async def add() -> None:
                        with progress.shown():
                            if mode.value == 'local':
                                added = await act(partial(repos.register_local, settings), source.value,
                                                  success='Repository registered')
                            else:
                                added = await act(partial(repos.clone, settings), source.value,
                                                  progress=progress.report, success='Repository registered')
                        if added is not FAILED:
                            source.set_value('')
                            await repo_list.refresh()
                    busy_button('Register', add).props('unelevated color=teal-8').mark('register-repo')
                progress = WorkProgress().mark('clone-progress')
                roots = ', '.join(str(r) for r in settings.allowed_repo_roots())
                ui.label(f'Local repositories must be below: {roots}').classes('text-xs text-slate-600')
        await repo_list()


def _repos_and_worktrees(actor: User) -> tuple[list, dict[str, list[dict]]]:
    items = repos.list_repos()
    return items, {repo.id: repos.list_worktrees(actor, repo.id, archived=None) for repo in items}
