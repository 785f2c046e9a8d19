"""A worktree's shared terminal for one user, placeable in any container (a full page, a board's side panel).

The xterm opens at its fitted size, then attaches to the worktree's tmux window through `agor.terminals`. Under it a
line says who is attached; above it, whose shell it is, "read-only" when this user cannot type, and, for the host,
who may type and closing the share.
"""
from __future__ import annotations

from nicegui import ui
from nicegui.events import GenericEventArguments, XtermDataEventArguments

from agor.errors import DomainError
from agor.models import Role, User
from agor.terminals import Attachment, ShareState, TerminalService

from .act import act, as_current_user

TERMINAL_OPTIONS = {'cursorBlink': True, 'fontSize': 13, 'scrollback': 5000,
                    'fontFamily': 'ui-monospace, SFMono-Regular, Menlo, Consolas, monospace',
                    'theme': {'background': '#0f172a', 'foreground': '#e2e8f0'}}


class TerminalElement(ui.xterm, component='terminal_view.js'):
    """ui.xterm with flow control (`feed` + `ack`) and fitting to its container."""

    def feed(self, text: str, size: int) -> None:
        self.run_method('feed', text, size)


class TerminalView(ui.column):
    """A worktree's shared terminal for `user`; `warning` (the unix_user_mode warning) is shown to admins."""

    def __init__(self, service: TerminalService, user: User, worktree_id: str, *, warning: str | None = None) -> None:
        super().__init__()
        self.service, self.user_id, self.worktree_id = service, user.id, worktree_id
        self.may_type = user.has(Role.member)  # what to show; opening and sharing are checked as the user is then
        self.attachment: Attachment | None = None
        self.share: ShareState | None = None
        self.size: tuple[int, int] | None = None  # the browser's latest size ...
        self.size_seq = -1  # ... by the browser's count (events may arrive out of order before the handshake)
        self.classes('w-full h-full gap-1 no-wrap')
        with self:
            if warning and user.has(Role.admin):
                ui.label(warning).classes('text-xs text-amber-800 bg-amber-50 rounded px-2 py-1') \
                    .mark('terminal-mode-warning')
            self.header = ui.row().classes('w-full items-center gap-2 text-sm text-slate-600 min-h-[28px]')
            with ui.element('div').classes('w-full grow min-h-[200px] rounded overflow-hidden bg-slate-900 p-1'):
                self.term = TerminalElement({**TERMINAL_OPTIONS, 'disableStdin': not user.has(Role.member)}) \
                    .mark('terminal')
            self.people = ui.label().classes('text-xs text-slate-600').mark('terminal-people')
            self.message = ui.row().classes('w-full items-center gap-2')
        self.term.on('ready', self._open)
        self.term.on_data(self._typed)
        self.term.on('resize', self._resized)
        self.term.on('ack', self._shown)
        self.client.on_connect(self._reconnected)

    # ---- agor.terminals.Sink -----------------------------------------------------------------------------------------

    def output(self, text: str, size: int) -> None:
        self.term.feed(text, size)

    def state(self, share: ShareState) -> None:
        self.share = share
        self._render_header()

    def ended(self, reason: str) -> None:
        self.attachment = None
        self._show_message(reason, again=True)

    # ---- lifecycle --------------------------------------------------------------------------------------------------

    async def _open(self, e: GenericEventArguments) -> None:
        if self.is_deleted:
            return
        self._resized(e)
        if self.attachment is not None:  # a new xterm for the same view (e.g. a dialog opened again): fill it
            await self.attachment.redraw()
            return
        self.message.clear()
        try:
            attachment = await as_current_user(self.service.open, self.worktree_id, *self.size, self)
        except DomainError as error:
            self._show_message(error.message, again=True)
            return
        if self.is_deleted:  # the view went away while tmux was starting
            attachment.close()
            return
        self.attachment = attachment
        attachment.resize(*self.size)  # in case the browser resized while tmux was starting
        self.term.run_method('focus')

    def _typed(self, e: XtermDataEventArguments) -> None:
        if self.attachment is not None:
            self.attachment.write(e.data)

    def _resized(self, e: GenericEventArguments) -> None:
        if e.args['seq'] <= self.size_seq:
            return
        self.size, self.size_seq = (e.args['cols'], e.args['rows']), e.args['seq']
        if self.attachment is not None:
            self.attachment.resize(*self.size)

    def _shown(self, e: GenericEventArguments) -> None:
        if self.attachment is not None:
            self.attachment.ack(e.args)

    async def _reconnected(self) -> None:
        if self.attachment is not None:  # after a network loss: tmux redraws the whole screen
            await self.attachment.redraw()

    def _handle_delete(self) -> None:
        if self.attachment is not None:
            self.attachment.close()
            self.attachment = None
        super()._handle_delete()

    # ---- rendering --------------------------------------------------------------------------------------------------

    def _render_header(self) -> None:
        share = self.share
        assert share is not None
        is_host = share.host_id == self.user_id
        can_type = self.attachment.writable if self.attachment else self.may_type
        self.header.clear()
        with self.header:
            ui.icon('terminal').classes('text-slate-600')
            ui.label(_whose(share, is_host)).mark('terminal-owner')
            if not can_type:
                ui.badge('read-only', color='grey-8').props('outline').mark('terminal-readonly')
            if share.closed:
                ui.badge('share closed', color='orange').props('outline')
            ui.space()
            if is_host:
                self._host_menu(share)
        self.people.text = 'Attached: ' + ', '.join(
            p.name + (' (host)' if p.id == share.host_id else '') + (' (read-only)' if p.readonly else '')
            for p in share.people)

    def _host_menu(self, share: ShareState) -> None:
        service = self.service
        with ui.button('Sharing', icon='group').props('flat dense no-caps size=sm').mark('terminal-sharing'):
            with ui.menu().props('auto-close=false'):
                for person in share.people:
                    if person.id == share.host_id:
                        continue
                    ui.switch(f'{person.name} can type', value=not person.readonly,
                              on_change=lambda e, p=person: act(
                                  service.set_readonly, share.worktree_id, p.id, not e.value)) \
                        .classes('px-3').props('dense')
                if share.closed:
                    ui.menu_item('Share again', lambda: act(service.reopen_share, share.worktree_id))
                else:
                    ui.menu_item('Close the share (disconnect the others)',
                                 lambda: act(service.close_share, share.worktree_id))

    def _show_message(self, text: str, *, again: bool = False) -> None:
        if self.is_deleted:
            return
        self.message.clear()
        with self.message:
            ui.icon('info').classes('text-amber-600')
            ui.label(text).classes('text-sm text-slate-700').mark('terminal-message')
            if again:
                ui.button('Open again', on_click=lambda: self.term.run_method('reopen')).props('flat dense no-caps')


def _whose(share: ShareState, is_host: bool) -> str:
    account = f'Unix account {share.account}'
    if share.per_user:
        return f'Your shell ({account})' if is_host else f"{share.host_name}'s shell ({account}): you are a guest"
    return f'Shared shell opened by {"you" if is_host else share.host_name} ({account})'
