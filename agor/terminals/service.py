"""The sharing service: who is attached to which worktree's shell, who may type, the host's controls.

A view hands `open()` a `Sink` and gets an `Attachment` to type, resize and acknowledge output. The first open of a
worktree starts its shell (agor.terminals.tmux) and makes the opener its host; everyone else joins it as a guest.
"""
from __future__ import annotations

import asyncio
import contextlib
import hashlib
import os
import threading
from collections.abc import Callable
from dataclasses import dataclass
from functools import partial
from pathlib import Path
from typing import Protocol

from .. import auth, unix_accounts
from ..config import Settings
from ..errors import DomainError, Forbidden
from ..models import User, Worktree
from ..unix_accounts import Account
from .access import level_lets_type, may_see, may_start, terminal_env, terminal_worktree
from .pty import Client, Pump, spawn
from .tmux import Shell, TmuxServer, require_tmux


class Sink(Protocol):
    """Where an attachment delivers to (a browser view)."""

    def output(self, text: str, size: int) -> None:
        """Show terminal output; call `Attachment.ack(size)` once it is on screen."""

    def state(self, share: ShareState) -> None:
        """Who is attached, whose shell it is, who may type."""

    def ended(self, reason: str) -> None:
        """The attachment is over (the shell exited, the worktree went away, the host closed the share)."""


@dataclass(frozen=True)
class Person:
    id: str
    name: str
    readonly: bool


@dataclass(frozen=True)
class ShareState:
    worktree_id: str
    host_id: str
    host_name: str
    account: str  # the Unix account the shell runs as
    per_user: bool  # strict mode: the shell is the host's own account
    closed: bool
    people: tuple[Person, ...]


class Attachment:
    """One browser viewer of a worktree's shell: its own tmux client (agor.terminals.pty), as `account`."""

    def __init__(self, shell: Shell, user: User, account: Account, writable: bool, sink: Sink, client: Client,
                 *, on_detach: Callable[[Attachment], None], end_reason: Callable[[str], str]) -> None:
        self.shell, self.user, self.account, self.writable, self.sink = shell, user, account, writable, sink
        self.tty = client.tty
        self._on_detach, self._end_reason = on_detach, end_reason
        self.pump = Pump(client, on_output=sink.output, on_hangup=self._hung_up)

    @property
    def worktree_id(self) -> str:
        return self.shell.worktree_id

    @property
    def closed(self) -> bool:
        return self.pump.closed

    def write(self, data: str) -> bool:
        """Type into the shell. Returns False (and drops the input) when this viewer is read-only."""
        return self.writable and self.pump.write(data)

    def resize(self, cols: int, rows: int) -> None:
        self.pump.resize(cols, rows)

    def ack(self, size: int) -> None:
        """The viewer has shown `size` bytes of output."""
        self.pump.ack(size)

    async def redraw(self) -> None:
        """Have tmux send this viewer the whole screen again: its browser reconnected, or built a new terminal (which
        will never acknowledge what the old one was sent)."""
        if not self.closed:
            self.pump.forget_unacked()
            await asyncio.to_thread(self.shell.server.redraw, self.tty)

    def close(self, reason: str | None = None) -> None:
        """Detach (the shell lives on); with a reason, the viewer is told why."""
        if self.closed:
            return
        self.pump.close()
        self._on_detach(self)
        if reason:
            self.sink.ended(reason)

    def _hung_up(self) -> None:
        self.close(self._end_reason(self.worktree_id))


class TerminalService:
    def __init__(self, settings: Settings, *, tmux: str = 'tmux') -> None:
        self.settings = settings
        self.tmux = tmux
        self.mode = settings.unix_user_mode
        self._lock = threading.Lock()  # tmux layout changes (find or start a shell) happen one at a time
        self._servers: dict[str, TmuxServer] = {}  # by `<account>-<worktree id>`, the name of the socket's directory
        self._attachments: dict[str, list[Attachment]] = {}  # by worktree id; touched on the event loop only
        self._closed: set[str] = set()  # worktree ids whose host closed the share
        self._readonly: dict[str, set[str]] = {}  # host user id -> ids of joiners the host made read-only
        self._ended: dict[str, str] = {}  # worktree id -> why its shell was killed

    @property
    def tmux_dir(self) -> Path:
        if self.settings.tmux_dir:
            return self.settings.tmux_dir
        digest = hashlib.sha256(str(self.settings.data_dir).encode()).hexdigest()[:8]
        return Path(f'/tmp/agor-tmux-{os.geteuid()}-{digest}')

    # ---- opening ----------------------------------------------------------------------------------------------------

    async def open(self, user: User, worktree_ref: str, cols: int, rows: int, sink: Sink) -> Attachment:
        """Attach a viewer to the worktree's shell, starting it on first open."""
        shell, account, writable = await asyncio.to_thread(self._prepare, user, worktree_ref)
        server = shell.server
        client = await asyncio.to_thread(spawn, server.attach_argv(readonly=not writable), account,
                                         server.pass_fds, cols, rows)
        attachment = Attachment(shell, user, account, writable, sink, client, on_detach=self._detached,
                                end_reason=self._end_reason)
        self._attachments.setdefault(shell.worktree_id, []).append(attachment)
        self._broadcast(shell.worktree_id)
        return attachment

    def _prepare(self, user: User, worktree_ref: str) -> tuple[Shell, Account, bool]:
        worktree = terminal_worktree(user, worktree_ref)
        require_tmux(self.tmux)
        account = unix_accounts.account_for(self.settings, user)
        with self._lock:
            shell = self._find(worktree.id)
            if shell is None:
                may_start(user, worktree)
                shell = self._start(user, worktree, account)
            elif shell.worktree_id in self._closed and shell.host_id != user.id:
                raise Forbidden(f'{shell.host_name} has closed the share of this terminal.')
            writable = self._may_type(user, shell)
            if account != shell.server.account:
                shell.server.allow(account, write=writable)
        return shell, account, writable

    def _start(self, user: User, worktree: Worktree, account: Account) -> Shell:
        unix_accounts.open_worktree(account, Path(worktree.path))
        self._ended.pop(worktree.id, None)
        self._closed.discard(worktree.id)
        shell = self._server(account, worktree.id).start(worktree, user.id,
                                                         terminal_env(user, worktree, account))
        shell.host_name = user.name
        return shell

    def _server(self, account: Account, worktree_id: str) -> TmuxServer:
        key = f'{account.name}-{worktree_id}'
        server = self._servers.get(key)
        if server is None:
            server = self._servers[key] = TmuxServer(self.tmux, self.tmux_dir / key, account, worktree_id,
                                                     shared=self.mode == 'strict')
        return server

    def _candidate_servers(self, worktree_id: str) -> list[TmuxServer]:
        """The servers that may hold the worktree's shell: the shared account's, or (strict) any mapped account's."""
        if self.mode == 'simple':
            accounts = [unix_accounts.current()]
        else:
            names = sorted(set(self.settings.unix_accounts.values())) if self.mode == 'strict' else \
                [self.settings.executor_account]
            accounts = []
            for name in names:
                with contextlib.suppress(DomainError):
                    accounts.append(unix_accounts.lookup(name))
        return [self._server(account, worktree_id) for account in accounts
                if (self.tmux_dir / f'{account.name}-{worktree_id}' / 'tmux').exists()]

    def _find(self, worktree_id: str) -> Shell | None:
        for server in self._candidate_servers(worktree_id):
            shell = server.shell()
            if shell is not None:
                shell.host_name = _name(shell.host_id)
                return shell
        return None

    def _may_type(self, user: User, shell: Shell) -> bool:
        """Members type unless the host made them read-only or their level on the worktree is only `view`."""
        return level_lets_type(user, shell.worktree_id) and \
            user.id not in self._readonly.get(shell.host_id, set())

    def rights_changed(self, worktree_id: str) -> None:
        """Who may do what with the worktree changed (its level, its board's members). Safe from any thread: viewers
        who lost the worktree are detached, the others may type only while their level allows it."""
        for a in list(self._attachments.get(worktree_id, [])):
            user = auth.get_user(a.user.id)
            visible = may_see(user, worktree_id)
            writable = visible and user is not None and self._may_type(user, a.shell)
            asyncio.run_coroutine_threadsafe(self._apply_rights(a, visible, writable), a.pump.loop)

    async def _apply_rights(self, a: Attachment, visible: bool, writable: bool) -> None:
        if not visible:
            a.close('You no longer have access to this worktree.')
        elif writable and not a.writable:  # its tmux client was started read-only: a new one is needed
            a.close('You may type in this terminal now: open it again.')
        elif a.writable and not writable:
            a.writable = False
            if a.account != a.shell.server.account:
                await asyncio.to_thread(a.shell.server.allow, a.account, write=False)
            self._broadcast(a.worktree_id)

    # ---- sharing ----------------------------------------------------------------------------------------------------

    def state(self, worktree_id: str) -> ShareState | None:
        attachments = self._attachments.get(worktree_id)
        if not attachments:
            return None
        shell = attachments[0].shell
        writers = {a.user.id for a in attachments if a.writable}
        people = {a.user.id: Person(a.user.id, a.user.name, a.user.id not in writers) for a in attachments}
        return ShareState(worktree_id, shell.host_id, shell.host_name, shell.server.account.name,
                          self.mode == 'strict', worktree_id in self._closed, tuple(people.values()))

    async def set_readonly(self, actor: User, worktree_id: str, user_id: str, readonly: bool) -> None:
        """The host lets a joiner type, or makes them watch only (in all of the host's shells)."""
        shell = self._hosted_by(actor, worktree_id)
        if user_id == actor.id:
            raise Forbidden('You cannot make yourself read-only in your own shell.')
        joiners = self._readonly.setdefault(shell.host_id, set())
        (joiners.add if readonly else joiners.discard)(user_id)
        for attachments in list(self._attachments.values()):
            for a in attachments:
                if a.user.id == user_id and a.shell.host_id == shell.host_id:
                    a.writable = self._may_type(a.user, a.shell)
                    await asyncio.to_thread(a.shell.server.set_client_readonly, a.tty, not a.writable)
                    if a.account != a.shell.server.account:
                        await asyncio.to_thread(a.shell.server.allow, a.account, write=a.writable)
        self._broadcast_all()

    async def close_share(self, actor: User, worktree_id: str) -> None:
        """The host disconnects everyone else; nobody joins until the host shares again."""
        self._hosted_by(actor, worktree_id)
        self._closed.add(worktree_id)
        for a in list(self._attachments.get(worktree_id, [])):
            if a.user.id != actor.id:
                a.close(f'{actor.name} closed the share of this terminal.')
        self._broadcast(worktree_id)

    async def reopen_share(self, actor: User, worktree_id: str) -> None:
        self._hosted_by(actor, worktree_id)
        self._closed.discard(worktree_id)
        self._broadcast(worktree_id)

    def _hosted_by(self, actor: User, worktree_id: str) -> Shell:
        attachments = self._attachments.get(worktree_id)
        if not attachments or attachments[0].shell.host_id != actor.id:
            raise Forbidden('Only the person whose shell this is can change who may type or close the share.')
        return attachments[0].shell

    # ---- ending -----------------------------------------------------------------------------------------------------

    def on_worktree_event(self, event: dict) -> None:
        """A worktree archived or deleted (published after the commit) loses its shell; tmux is called off the loop."""
        if event['type'] != 'worktree_gone':
            return
        end = partial(self.worktree_gone, event['worktree_id'], f'{event["reason"]}; its shell has ended.')
        try:
            asyncio.get_running_loop().run_in_executor(None, end)
        except RuntimeError:  # delivered on the publishing thread (a bus bound to no loop)
            end()

    def worktree_gone(self, worktree_id: str, reason: str) -> None:
        """Kill the worktree's tmux servers (its viewers are told why). Safe to call from any thread."""
        with self._lock:
            self._ended[worktree_id] = reason
            try:
                servers = self._candidate_servers(worktree_id)
            except DomainError:
                return
            for server in servers:
                server.kill()
                self._servers.pop(server.directory.name, None)

    def close_all(self) -> None:
        for attachments in list(self._attachments.values()):
            for a in list(attachments):
                a.close()

    def kill_servers(self) -> None:
        """Stop every tmux server of this app (their shells end); for tests."""
        with self._lock:
            for server in self._servers.values():
                server.kill()

    def _end_reason(self, worktree_id: str) -> str:
        return self._ended.get(worktree_id, 'The shell has exited. Open the terminal again for a new one.')

    def _detached(self, attachment: Attachment) -> None:
        attachments = self._attachments.get(attachment.worktree_id, [])
        if attachment in attachments:
            attachments.remove(attachment)
        if not attachments:
            self._attachments.pop(attachment.worktree_id, None)
        server, account = attachment.shell.server, attachment.account
        if account != server.account and not any(a.account == account and a.shell.server is server
                                                  for group in self._attachments.values() for a in group):
            asyncio.get_running_loop().run_in_executor(None, server.deny, account)
        self._broadcast(attachment.worktree_id)

    def _broadcast(self, worktree_id: str) -> None:
        state = self.state(worktree_id)
        for a in list(self._attachments.get(worktree_id, [])):
            a.sink.state(state)  # type: ignore[arg-type]  (not None while there are attachments)

    def _broadcast_all(self) -> None:
        for worktree_id in list(self._attachments):
            self._broadcast(worktree_id)


def _name(user_id: str) -> str:
    user = auth.get_user(user_id)
    return user.name if user else 'Someone'
