"""A worktree's shared terminal on a page of its own: /w/<worktree id or unique prefix>/terminal."""
from __future__ import annotations

from nicegui import ui

from agor import cluster, terminals
from agor.config import Settings
from agor.errors import DomainError
from agor.models import User
from agor.terminals import TerminalService
from components.act import as_current_user
from components.terminal_view import TerminalView

from .frame import header, page


def register(settings: Settings, service: TerminalService) -> None:
    @page('/w/{worktree_ref}/terminal', settings, title='Terminal · Agor')
    async def terminal_page(user: User, settings: Settings, worktree_ref: str) -> None:
        header(user, settings, focused=True)
        if not settings.runner:  # terminals (tmux, and who may type) live on the cluster's runner process
            path = cluster.terminal_path(worktree_ref)
            with ui.column().classes('p-8 gap-2').mark('terminal-page-error'):
                ui.label('Terminals run on the process that runs agents; this one does not.').classes('text-lg')
                ui.link(f'Open the terminal there ({path})', path)
            return
        try:
            worktree = await as_current_user(terminals.terminal_worktree, worktree_ref)
        except DomainError as error:
            ui.label(error.message).classes('p-8 text-lg').mark('terminal-page-error')
            return
        ui.page_title(f'{worktree.name} · terminal · Agor')
        with ui.column().classes('w-full h-[calc(100vh-84px)] gap-2'):
            with ui.row().classes('items-baseline gap-2'):
                ui.label(worktree.name).classes('text-lg font-semibold')
                ui.label(f'{worktree.branch} · {worktree.path}').classes('text-sm text-slate-600')
            TerminalView(service, user, worktree.id, warning=terminals.mode_warning(settings)).classes('grow')
