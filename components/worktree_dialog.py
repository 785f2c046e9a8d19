"""Add a worktree to a board: create a new one in a registered repository, or place an existing one (those the viewer
may put on a board) here."""
from __future__ import annotations

from collections.abc import Awaitable, Callable
from functools import partial
from typing import Any

from nicegui import ui

from agor import repos
from agor.config import Settings
from agor.models import User

from .act import FAILED, act
from .busy import busy_button
from .work_progress import WorkProgress


async def open_add_worktree(board_id: str, settings: Settings, place: Callable[[str], Awaitable[None]]) -> None:
    """Read the repositories and worktrees as the viewer may see them now, then show the dialog; `place` puts the
    chosen or created worktree's card on the board."""
    listed = await act(_choices)
    if listed is not FAILED:
        AddWorktreeDialog(*listed, board_id=board_id, settings=settings, place=place).open()


def _choices(actor: User) -> tuple[list[Any], list[dict[str, Any]]]:
    return repos.list_repos(), repos.list_worktrees(actor)


class AddWorktreeDialog(ui.dialog):
    def __init__(self, repo_list: list[Any], worktree_list: list[dict[str, Any]], *, board_id: str,
                 settings: Settings, place: Callable[[str], Awaitable[None]]) -> None:
        super().__init__()
        self.board_id, self.settings, self.place = board_id, settings, place
        with self, ui.card().classes('w-[30rem]').mark('worktree-dialog'):
            ui.label('Add a worktree').classes('text-lg font-semibold')
            with ui.tabs().classes('w-full') as tabs:
                new_tab = ui.tab('New worktree')
                existing_tab = ui.tab('Existing')
            with ui.tab_panels(tabs, value=new_tab).classes('w-full'):
                with ui.tab_panel(new_tab).classes('gap-2 p-0 pt-2'):
                    self._new_worktree(repo_list)
                with ui.tab_panel(existing_tab).classes('gap-2 p-0 pt-2'):
                    self._existing(worktree_list)

    def _new_worktree(self, repo_list: list[Any]) -> None:
        repo_options = {r.id: r.name for r in repo_list}
        if not repo_options:
            ui.label('No repositories yet: an admin registers one under Repos.').classes('text-slate-600')
        repo = ui.select(repo_options, label='Repository', value=next(iter(repo_options), None)) \
            .props('outlined').classes('w-full')
        name = ui.input('Name (e.g. auth-fix)').props('outlined').classes('w-full')
        branch = ui.input('Branch (defaults to the name)').props('outlined').classes('w-full')
        existing_branch = ui.checkbox('Use an existing branch')
        base = ui.input('Start from (defaults to the repo\'s default branch)').props('outlined') \
            .classes('w-full').bind_visibility_from(existing_branch, 'value', backward=lambda v: not v)

        async def create() -> None:
            with progress.shown():
                worktree = await act(partial(repos.create_worktree, self.settings), repo.value or '', name.value,
                                     branch.value or None, new_branch=not existing_branch.value,
                                     base=base.value or None, board_id=self.board_id, progress=progress.report)
            if worktree is not FAILED:
                await self.place(worktree.id)
                self.close()
        busy_button('Create worktree', create).props('unelevated color=teal-8')
        progress = WorkProgress()

    def _existing(self, worktree_list: list[dict[str, Any]]) -> None:
        options = {w['id']: f'{w["repo"]} / {w["name"]}' + (' (on another board)' if w['board_id'] else '')
                   for w in worktree_list if w['board_id'] != self.board_id and w['level'] == 'all'}
        choice = ui.select(options, label='Worktree').props('outlined').classes('w-full')

        async def place() -> None:
            if choice.value:
                await self.place(choice.value)
                self.close()
        ui.button('Place on this board', on_click=place).props('unelevated color=teal-8')
