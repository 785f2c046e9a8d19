"""Multiplayer terminals: one tmux window per worktree, one `tmux attach` client on a PTY per browser viewer.

Layout (docs/terminals.md): one tmux server per worktree and Unix account (`TmuxServer`), holding one session
`v-<worktree id>` with the worktree's window, which viewers attach to; so neither a viewer nor a shell can reach
another worktree's window through tmux. tmux redraws the whole screen for every new client and only sends screen
differences to slow ones, which bounds floods.

No NiceGUI here: a view hands `open()` a `Sink` and gets an `Attachment` to type, resize and acknowledge output.
"""
from __future__ import annotations

import asyncio
import codecs
import contextlib
import fcntl
import hashlib
import logging
import os
import shutil
import stat
import struct
import subprocess
import termios
import threading
from collections.abc import Callable
from dataclasses import dataclass
from functools import partial
from pathlib import Path
from typing import Protocol

from . import auth, credentials, db, events, ids, permissions, unix_accounts
from .config import Settings
from .errors import DomainError, Forbidden, NotFound
from .models import Role, User, Worktree
from .unix_accounts import Account

log = logging.getLogger('agor.terminals')

READ_SIZE = 65536
COALESCE = 0.016  # output is sent at once, then at most every 16 ms while it keeps coming
HIGH_WATER = 256 * 1024  # stop reading a viewer's PTY when this much output is unsent or not yet shown
LOW_WATER = 64 * 1024  # ... and read again below this
MAX_INPUT = 1024 * 1024  # typed/pasted bytes waiting for the PTY; beyond this input is dropped
COMMAND_TIMEOUT = 10
TMUX_CONF = '''\
set -s escape-time 10
set -s default-terminal tmux-256color
set -s focus-events on
set -s set-clipboard off
set -as terminal-features ',xterm-256color:RGB'
set -g status off
set -g prefix None
set -g prefix2 None
set -g mouse off
set -g history-limit 10000
set -g update-environment ''
set -g lock-after-time 0
set -gw window-size smallest
unbind -a -T prefix
unbind -a -T root
unbind -a -T copy-mode
unbind -a -T copy-mode-vi
'''
PROC_FD = Path('/proc/self/fd')


class TerminalUnavailable(DomainError):
    status = 503


class TmuxError(TerminalUnavailable):
    pass


def terminal_env(settings: Settings, user: User, worktree: Worktree, account: Account) -> dict[str, str]:
    """The environment a terminal opened by `user` starts with when it runs as `account`: the user's merged
    environment (agor.credentials), plus where it runs."""
    env = credentials.merged_env(user, account, settings.agent_env)
    env.update(AGOR_WORKTREE=worktree.name, AGOR_WORKTREE_PATH=worktree.path, AGOR_BRANCH=worktree.branch)
    return env


def terminal_worktree(user: User, ref: str) -> Worktree:
    """The worktree whose terminal `user` asks for, if they may open it: terminals are reached only this way."""
    auth.require(user, Role.viewer, 'open terminals')
    with db.read() as session:
        worktree = ids.resolve(session, Worktree, ref, 'worktree')
        permissions.require_worktree(session, user, worktree, permissions.Level.view, 'open its terminal')
    if worktree.archived:
        raise NotFound(f'{worktree.name} is archived: restore it to open its terminal.')
    if not Path(worktree.path).is_dir():
        raise NotFound(f'The checkout of {worktree.name} is missing on the server ({worktree.path}).')
    return worktree


def mode_warning(settings: Settings) -> str | None:
    """What admins should know about the configured unix_user_mode (None when there is nothing to warn about)."""
    if settings.unix_user_mode != 'simple':
        return None
    return (f"Simple mode: terminals run as the app's own Unix account ({unix_accounts.current().name}), so anyone "
            f'who can type in a terminal can read what the app can, including the database and the session secret in '
            f'{settings.data_dir}. Set AGOR_UNIX_USER_MODE=insulated or strict unless every member is fully trusted '
            '(docs/terminals.md).')


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


@dataclass
class Window:
    """A worktree's window in one tmux server."""
    server: TmuxServer
    id: str
    worktree_id: str
    host_id: str
    host_name: str = ''

    @property
    def view(self) -> str:
        return f'v-{self.worktree_id}'


class TmuxServer:
    """The tmux server of one worktree's shell, run as one Unix account.

    Its socket `<tmux dir>/<account>-<worktree id>/tmux` sits in a directory only that account owns, below a
    directory only the app can open: no other process finds a way to it by path. The app holds the socket's
    directory open and hands that descriptor to every tmux process it starts, which reach the socket as
    `/proc/self/fd/N/tmux`; so `$TMUX` in a shell names nothing that shell can open, and the path the kernel lists
    for the socket (/proc/net/unix) is useless too.
    """

    def __init__(self, tmux: str, directory: Path, account: Account, worktree_id: str, *, shared: bool) -> None:
        self.tmux, self.account, self.worktree_id, self.shared = tmux, account, worktree_id, shared
        self.directory = directory  # shared: other accounts' clients may join (strict mode, tmux's server-access)
        self.env = unix_accounts.login_env(account)
        self._fd: int | None = None

    @property
    def socket(self) -> Path:
        """The socket's real path (for the app and tests, which run as root or as the account itself)."""
        return self.directory / 'tmux'

    def reach(self, name: str) -> str:
        """How a tmux process the app starts names a file of the server's directory (see the class)."""
        return f'/proc/self/fd/{self._open()}/{name}' if PROC_FD.is_dir() else str(self.directory / name)

    def run(self, *args: str, env: dict[str, str] | None = None) -> str:
        result = self._run(args, env)
        if result.returncode != 0:
            raise TmuxError(f'tmux {args[0]} failed: {result.stderr.strip() or result.returncode}')
        return result.stdout

    def succeeds(self, *args: str) -> bool:
        return self._run(args).returncode == 0

    def windows(self) -> dict[str, Window]:
        """The worktree windows of this server, by worktree id (none when the server is not running)."""
        if not self.socket.exists():
            return {}
        result = self._run(('list-windows', '-a', '-F', '#{window_id} #{@agor_worktree} #{@agor_host}'))
        found = {}
        for line in result.stdout.splitlines() if result.returncode == 0 else ():
            parts = line.split()
            if len(parts) == 3:
                found[parts[1]] = Window(self, parts[0], parts[1], parts[2])
        return found

    def create_window(self, worktree: Worktree, host: User, env: dict[str, str]) -> Window:
        """Start the server with the worktree's shell. The shell's environment is this command's own process
        environment, which tmux copies into the new server (never `-e NAME=value` arguments, which `ps` shows)."""
        directory = self._open()
        with unix_accounts.files_as(self.account):  # the account's directory: write as the account
            with contextlib.suppress(FileNotFoundError):
                os.unlink('tmux.conf', dir_fd=directory)
            fd = os.open('tmux.conf', os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o644, dir_fd=directory)
            with os.fdopen(fd, 'w') as conf:
                conf.write(TMUX_CONF)  # read when this command starts the server
        window = Window(self, '', worktree.id, host.id, host.name)
        window.id = self.run('new-session', '-d', '-s', window.view, '-x', '80', '-y', '24', '-n', worktree.name,
                             '-c', worktree.path, '-P', '-F', '#{window_id}', env=env).strip()
        if self.shared:
            self.socket.chmod(0o666)  # tmux itself refuses every account that server-access has not allowed
        self.run('set-option', '-w', '-t', window.id, '@agor_worktree', worktree.id, ';',
                 'set-option', '-w', '-t', window.id, '@agor_host', host.id)
        return window

    def allow(self, account: Account, *, write: bool) -> None:
        self.succeeds('server-access', '-a', account.name)  # fails harmlessly when already allowed
        self.run('server-access', '-w' if write else '-r', account.name)

    def deny(self, account: Account) -> None:
        self._run(('server-access', '-d', account.name))

    def set_client_readonly(self, tty: str, readonly: bool) -> None:
        """A read-only client neither types nor sizes the window (its size is ignored)."""
        if self._run(('display-message', '-p', '-c', tty, '#{client_readonly}')).stdout.strip() != str(int(readonly)):
            self.succeeds('switch-client', '-c', tty, '-r')  # toggles: refresh-client -f cannot clear read-only
        self.succeeds('refresh-client', '-t', tty, '-f', 'ignore-size' if readonly else '!ignore-size')

    def attach_argv(self, window: Window, *, readonly: bool) -> list[str]:
        flags = ['-f', 'read-only,ignore-size'] if readonly else []
        return ['setsid', '-c', self.tmux, '-u', '-S', self.reach('tmux'), 'attach-session', '-t', f'={window.view}',
                *flags]

    @property
    def pass_fds(self) -> tuple[int, ...]:
        return (self._open(),) if PROC_FD.is_dir() else ()

    def kill(self) -> None:
        if self.socket.exists():
            self._run(('kill-server',))
        self.close()

    def close(self) -> None:
        if self._fd is not None:
            os.close(self._fd)
            self._fd = None

    def _open(self) -> int:
        if self._fd is None:
            self._fd = os.open(self.directory, getattr(os, 'O_PATH', os.O_RDONLY) | os.O_DIRECTORY | os.O_CLOEXEC)
        return self._fd

    def _run(self, args: tuple[str, ...] | list[str], env: dict[str, str] | None = None) \
            -> subprocess.CompletedProcess[str]:
        argv = [self.tmux, '-u', '-f', self.reach('tmux.conf'), '-S', self.reach('tmux'), *args]
        try:
            return subprocess.run(argv, capture_output=True, text=True, timeout=COMMAND_TIMEOUT, env=env or self.env,
                                  stdin=subprocess.DEVNULL, cwd='/', pass_fds=self.pass_fds,
                                  **unix_accounts.spawn_as(self.account))
        except subprocess.TimeoutExpired:
            raise TmuxError(f'tmux {args[0]} did not answer within {COMMAND_TIMEOUT} s.') from None


class Attachment:
    """One browser viewer: a `tmux attach` client on a PTY whose output goes to the viewer's sink, with flow control.

    Output is read only while less than HIGH_WATER bytes are unsent or unacknowledged, so a slow browser makes tmux
    see a slow terminal (it then skips intermediate frames) instead of this process buffering a flood.
    """

    def __init__(self, service: TerminalService, window: Window, user: User, account: Account, writable: bool,
                 sink: Sink, process: subprocess.Popen, fd: int, tty: str) -> None:
        self.service, self.window, self.user, self.account = service, window, user, account
        self.writable, self.sink, self.process, self.fd, self.tty = writable, sink, process, fd, tty
        self.closed = False
        self._loop = asyncio.get_running_loop()
        self._decoder = codecs.getincrementaldecoder('utf-8')('replace')
        self._out: list[str] = []
        self._out_size = 0
        self._unacked = 0
        self._reading = False
        self._flush_at: asyncio.TimerHandle | None = None
        self._last_flush = 0.0
        self._input = b''
        self._writer = False
        self._resume_reading()

    @property
    def worktree_id(self) -> str:
        return self.window.worktree_id

    def write(self, data: str) -> bool:
        """Type into the shell. Returns False (and drops the input) when this viewer is read-only."""
        if not self.writable or self.closed:
            return False
        if len(self._input) + len(data) > MAX_INPUT:
            return False
        self._input += data.encode('utf-8', 'replace')
        self._drain_input()
        return True

    def resize(self, cols: int, rows: int) -> None:
        if self.closed:
            return
        cols, rows = max(2, min(int(cols), 1000)), max(1, min(int(rows), 500))
        fcntl.ioctl(self.fd, termios.TIOCSWINSZ, struct.pack('HHHH', rows, cols, 0, 0))

    def ack(self, size: int) -> None:
        """The viewer has shown `size` bytes of output."""
        self._unacked = max(0, self._unacked - int(size))
        if not self._reading and self._out_size + self._unacked < LOW_WATER:
            self._resume_reading()

    async def redraw(self) -> None:
        """Have tmux send this viewer the whole screen again: its browser reconnected, or built a new terminal (which
        will never acknowledge what the old one was sent)."""
        if not self.closed:
            self.ack(self._unacked)
            await asyncio.to_thread(self.window.server.succeeds, 'refresh-client', '-t', self.tty)

    def close(self, reason: str | None = None) -> None:
        """Detach (the shell lives on); with a reason, the viewer is told why."""
        if self.closed:
            return
        self.closed = True
        self._flush()
        self._stop_io()
        os.close(self.fd)  # the tmux client sees a hang-up and detaches
        self._loop.run_in_executor(None, _reap, self.process)
        self.service._detached(self)
        if reason:
            self.sink.ended(reason)

    def _readable(self) -> None:
        try:
            data = os.read(self.fd, READ_SIZE)
        except BlockingIOError:
            return
        except OSError:  # EIO: the tmux client has gone
            data = b''
        if not data:
            self.close(self.service._end_reason(self.worktree_id))
            return
        self._out.append(self._decoder.decode(data))
        self._out_size += len(data)
        if self._flush_at is None:
            delay = self._last_flush + COALESCE - self._loop.time()
            if delay <= 0:
                self._flush()
            else:
                self._flush_at = self._loop.call_later(delay, self._flush)
        if self._out_size + self._unacked >= HIGH_WATER:
            self._loop.remove_reader(self.fd)
            self._reading = False

    def _flush(self) -> None:
        self._flush_at = None
        if not self._out:
            return
        text, size = ''.join(self._out), self._out_size
        self._out.clear()
        self._out_size = 0
        self._unacked += size
        self._last_flush = self._loop.time()
        self.sink.output(text, size)

    def _resume_reading(self) -> None:
        if not self.closed:
            self._loop.add_reader(self.fd, self._readable)
            self._reading = True

    def _drain_input(self) -> None:
        try:
            written = os.write(self.fd, self._input)
        except BlockingIOError:
            written = 0
        except OSError:
            self._input = b''
            written = 0
        self._input = self._input[written:]
        if self._input and not self._writer:
            self._loop.add_writer(self.fd, self._drain_input)
            self._writer = True
        elif not self._input and self._writer:
            self._loop.remove_writer(self.fd)
            self._writer = False

    def _stop_io(self) -> None:
        if self._flush_at is not None:
            self._flush_at.cancel()
        self._loop.remove_reader(self.fd)
        self._loop.remove_writer(self.fd)


class TerminalService:
    def __init__(self, settings: Settings, *, tmux: str = 'tmux') -> None:
        self.settings = settings
        self.tmux = tmux
        self.mode = settings.unix_user_mode
        self._lock = threading.Lock()  # tmux layout changes (find or create a window) happen one at a time
        self._servers: dict[str, TmuxServer] = {}
        self._attachments: dict[str, list[Attachment]] = {}  # by worktree id; touched on the event loop only
        self._closed: set[str] = set()  # worktree ids whose host closed the share
        self._readonly: dict[str, set[str]] = {}  # host user id -> ids of joiners the host made read-only
        self._ended: dict[str, str] = {}  # worktree id -> why its window was killed

    @property
    def tmux_dir(self) -> Path:
        if self.settings.tmux_dir:
            return self.settings.tmux_dir
        digest = hashlib.sha256(str(self.settings.data_dir).encode()).hexdigest()[:8]
        return Path(f'/tmp/agor-tmux-{os.geteuid()}-{digest}')

    # ---- opening ----------------------------------------------------------------------------------------------------

    async def open(self, user: User, worktree_ref: str, cols: int, rows: int, sink: Sink) -> Attachment:
        """Attach a viewer to the worktree's terminal, creating the window on first open."""
        window, account, writable = await asyncio.to_thread(self._prepare, user, worktree_ref)
        server = window.server
        process, fd, tty = await asyncio.to_thread(_spawn, server, window, account, not writable, cols, rows)
        attachment = Attachment(self, window, user, account, writable, sink, process, fd, tty)
        self._attachments.setdefault(window.worktree_id, []).append(attachment)
        self._broadcast(window.worktree_id)
        return attachment

    def _prepare(self, user: User, worktree_ref: str) -> tuple[Window, Account, bool]:
        worktree = terminal_worktree(user, worktree_ref)
        if not shutil.which(self.tmux):
            raise TerminalUnavailable('tmux is not installed on the server. Install it (Debian/Ubuntu: '
                                      '`apt-get install tmux`, Fedora: `dnf install tmux`, macOS: `brew install tmux`) '
                                      'and open the terminal again.')
        account = unix_accounts.account_for(self.settings, user)
        with self._lock:
            window = self._find(worktree.id)
            if window is None:
                auth.require(user, Role.member, 'start a terminal (a member opens it first, then you can watch)')
                permissions.require_worktree_id(user, worktree.id, permissions.Level.session, 'start its terminal')
                window = self._create(user, worktree, account)
            else:
                window.host_name = _name(window.host_id)
                if window.worktree_id in self._closed and window.host_id != user.id:
                    raise Forbidden(f'{window.host_name} has closed the share of this terminal.')
            writable = self._may_type(user, window)
            if account != window.server.account:
                window.server.allow(account, write=writable)
        return window, account, writable

    def _create(self, user: User, worktree: Worktree, account: Account) -> Window:
        unix_accounts.open_worktree(account, Path(worktree.path))
        self._ended.pop(worktree.id, None)
        self._closed.discard(worktree.id)
        server = self._server(account, worktree.id)
        self._make_socket_dir(server)
        return server.create_window(worktree, user, terminal_env(self.settings, user, worktree, account))

    def _server(self, account: Account, worktree_id: str) -> TmuxServer:
        key = f'{account.name}-{worktree_id}'
        server = self._servers.get(key)
        if server is None:
            server = self._servers[key] = TmuxServer(self.tmux, self.tmux_dir / key, account, worktree_id,
                                                     shared=self.mode == 'strict')
        return server

    def _make_socket_dir(self, server: TmuxServer) -> None:
        """`<tmux dir>` (0700, the app's) / `<account>-<worktree id>` (the account's; 0711 in strict mode, where
        guests' clients look the socket up in it)."""
        base, account = self.tmux_dir, server.account
        base.mkdir(mode=0o700, exist_ok=True)
        info = base.lstat()
        if not stat.S_ISDIR(info.st_mode) or info.st_uid != os.geteuid():
            raise TerminalUnavailable(f'{base} is not a directory owned by the app\'s account: remove it or set '
                                      'AGOR_TMUX_DIR.')
        base.chmod(0o700)
        server.directory.mkdir(mode=0o700, exist_ok=True)
        if not account.is_current:
            os.chown(server.directory, account.uid, account.gid, follow_symlinks=False)
        server.directory.chmod(0o711 if server.shared else 0o700)

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

    def _find(self, worktree_id: str) -> Window | None:
        for server in self._candidate_servers(worktree_id):
            window = server.windows().get(worktree_id)
            if window is not None:
                return window
        return None

    def _may_type(self, user: User, window: Window) -> bool:
        """Members type unless the host made them read-only or their level on the worktree is only `view`."""
        level = permissions.level_of(user, window.worktree_id)
        return (user.has(Role.member) and level is not None and level >= permissions.Level.session
                and user.id not in self._readonly.get(window.host_id, set()))

    def rights_changed(self, worktree_id: str) -> None:
        """Who may do what with the worktree changed (its level, its board's members). Safe from any thread: viewers
        who lost the worktree are detached, the others may type only while their level allows it."""
        for a in list(self._attachments.get(worktree_id, [])):
            user = auth.get_user(a.user.id)
            visible = user is not None and permissions.level_of(user, worktree_id) is not None
            writable = visible and user is not None and self._may_type(user, a.window)
            asyncio.run_coroutine_threadsafe(self._apply_rights(a, visible, writable), a._loop)

    async def _apply_rights(self, a: Attachment, visible: bool, writable: bool) -> None:
        if not visible:
            a.close('You no longer have access to this worktree.')
        elif writable and not a.writable:  # its tmux client was started read-only: a new one is needed
            a.close('You may type in this terminal now: open it again.')
        elif a.writable and not writable:
            a.writable = False
            if a.account != a.window.server.account:
                await asyncio.to_thread(a.window.server.allow, a.account, write=False)
            self._broadcast(a.worktree_id)

    # ---- sharing ----------------------------------------------------------------------------------------------------

    def state(self, worktree_id: str) -> ShareState | None:
        attachments = self._attachments.get(worktree_id)
        if not attachments:
            return None
        window = attachments[0].window
        writers = {a.user.id for a in attachments if a.writable}
        people = {a.user.id: Person(a.user.id, a.user.name, a.user.id not in writers) for a in attachments}
        return ShareState(worktree_id, window.host_id, window.host_name, window.server.account.name,
                          self.mode == 'strict', worktree_id in self._closed, tuple(people.values()))

    async def set_readonly(self, actor: User, worktree_id: str, user_id: str, readonly: bool) -> None:
        """The host lets a joiner type, or makes them watch only (in all of the host's shells)."""
        window = self._hosted_by(actor, worktree_id)
        if user_id == actor.id:
            raise Forbidden('You cannot make yourself read-only in your own shell.')
        joiners = self._readonly.setdefault(window.host_id, set())
        (joiners.add if readonly else joiners.discard)(user_id)
        for attachments in list(self._attachments.values()):
            for a in attachments:
                if a.user.id == user_id and a.window.host_id == window.host_id:
                    a.writable = self._may_type(a.user, a.window)
                    await asyncio.to_thread(a.window.server.set_client_readonly, a.tty, not a.writable)
                    if a.account != a.window.server.account:
                        await asyncio.to_thread(a.window.server.allow, a.account, write=a.writable)
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

    def _hosted_by(self, actor: User, worktree_id: str) -> Window:
        attachments = self._attachments.get(worktree_id)
        if not attachments or attachments[0].window.host_id != actor.id:
            raise Forbidden('Only the person whose shell this is can change who may type or close the share.')
        return attachments[0].window

    # ---- ending -----------------------------------------------------------------------------------------------------

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
        server, account = attachment.window.server, attachment.account
        if account != server.account and not any(a.account == account and a.window.server is server
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


def _spawn(server: TmuxServer, window: Window, account: Account, readonly: bool, cols: int,
           rows: int) -> tuple[subprocess.Popen, int, str]:
    """Start `tmux attach` on a new PTY as `account`, sized before it starts so the first redraw is right."""
    master, slave = os.openpty()
    try:
        fcntl.ioctl(slave, termios.TIOCSWINSZ, struct.pack('HHHH', max(1, rows), max(2, cols), 0, 0))
        if not account.is_current:
            os.fchown(slave, account.uid, -1)
        env = {**unix_accounts.login_env(account), 'TERM': 'xterm-256color', 'COLORTERM': 'truecolor'}
        process = subprocess.Popen(server.attach_argv(window, readonly=readonly), stdin=slave, stdout=slave,
                                   stderr=slave, env=env, cwd='/', close_fds=True, pass_fds=server.pass_fds,
                                   **unix_accounts.spawn_as(account))
        tty = os.ttyname(slave)
    except BaseException:
        os.close(master)
        raise
    finally:
        os.close(slave)
    os.set_blocking(master, False)
    return process, master, tty


def _reap(process: subprocess.Popen) -> None:
    try:
        process.wait(timeout=3)
    except subprocess.TimeoutExpired:
        process.kill()
        process.wait()


def _name(user_id: str) -> str:
    user = auth.get_user(user_id)
    return user.name if user else 'Someone'


service: TerminalService | None = None
_unsubscribe: Callable[[], None] | None = None


def start(settings: Settings) -> TerminalService:
    global service, _unsubscribe
    service = TerminalService(settings)
    if _unsubscribe is None:
        _unsubscribe = events.bus.subscribe(events.WORKTREES_TOPIC, _on_worktree_event)
    return service


def stop() -> None:
    global _unsubscribe
    if _unsubscribe is not None:
        _unsubscribe()
        _unsubscribe = None
    if service is not None:
        service.close_all()


def _on_worktree_event(event: dict) -> None:
    """A worktree archived or deleted (published after the commit) loses its terminal; tmux is called off the loop."""
    if event['type'] != 'worktree_gone' or service is None:
        return
    end = partial(service.worktree_gone, event['worktree_id'], f'{event["reason"]}; its shell has ended.')
    try:
        asyncio.get_running_loop().run_in_executor(None, end)
    except RuntimeError:  # delivered on the publishing thread (a bus bound to no loop)
        end()


def rights_changed(*worktree_ids: str) -> None:
    """Hook for agor.permissions' callers: a worktree's level or its board's members changed."""
    if service is not None:
        for worktree_id in worktree_ids:
            service.rights_changed(worktree_id)
