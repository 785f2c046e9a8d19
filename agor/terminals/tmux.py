"""The tmux layer, on libtmux: one tmux server per worktree and Unix account, holding that worktree's shell.

`TmuxServer` is a `libtmux.Server` whose every command runs as the server's account (libtmux itself runs tmux as the
calling process: here that would be root talking to a server an account controls, which may then make the client
read or write files as root). Commands go through `cmd` (libtmux's signature), so libtmux's windows, panes, options,
capture and server methods work unchanged; its listings (`sessions`, `windows`, `from_*_id`), which bypass `cmd`, are
not used. What libtmux has no method for is a raw `cmd` here: `new-session` with the shell's environment as its
process environment, client flags (`switch-client -r`, `refresh-client -f`), and `server-access -w|-r <user>`
(libtmux's `server_access` puts the user after `-a`). A viewer's client is a plain `tmux attach` on a PTY
(`attach_argv`, agor.terminals.pty).
"""
from __future__ import annotations

import contextlib
import os
import shutil
import stat
import subprocess
from dataclasses import dataclass
from pathlib import Path

import libtmux
from libtmux.common import tmux_cmd
from libtmux.exc import LibTmuxException

from .. import unix_accounts
from ..errors import DomainError
from ..models import Worktree
from ..unix_accounts import Account

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
WORKTREE_OPTION, HOST_OPTION = '@agor_worktree', '@agor_host'


class TerminalUnavailable(DomainError, status=503):
    """tmux cannot serve this terminal now (not installed, or its server failed to start)."""


class TmuxError(TerminalUnavailable):
    pass


def require_tmux(tmux: str) -> None:
    if not shutil.which(tmux):
        raise TerminalUnavailable('tmux is not installed on the server. Install it (Debian/Ubuntu: '
                                  '`apt-get install tmux`, Fedora: `dnf install tmux`, macOS: `brew install tmux`) '
                                  'and open the terminal again.')


@dataclass
class Shell:
    """A worktree's shell: the one window (and pane) of its tmux server, and who opened it, its host."""
    server: TmuxServer
    window: libtmux.Window
    pane: libtmux.Pane
    host_id: str
    host_name: str = ''

    @property
    def worktree_id(self) -> str:
        return self.server.worktree_id

    def screen(self) -> str:
        """What the window shows now (tmux's own screen, without colours)."""
        return '\n'.join(self.pane.capture_pane())


class AccountCommand(tmux_cmd):
    """libtmux's command result, for a command `TmuxServer.cmd` ran as the server's account."""

    def __init__(self, argv: list[str], result: subprocess.CompletedProcess[str]) -> None:  # not libtmux's runner
        self.cmd = argv
        self.returncode = result.returncode
        self.stdout = result.stdout.rstrip('\n').split('\n') if result.stdout.strip('\n') else []
        self.stderr = [line for line in result.stderr.split('\n') if line]


class TmuxServer(libtmux.Server):
    """The tmux server of one worktree's shell, run as one Unix account.

    Its socket `<tmux dir>/<account>-<worktree id>/tmux` sits in a directory only that account owns, below a
    directory only the app can open: no other process finds a way to it by path. The app holds the socket's
    directory open and hands that descriptor to every tmux process it starts, which reach the socket as
    `/proc/self/fd/N/tmux`; so `$TMUX` in a shell names nothing that shell can open, and the path the kernel lists
    for the socket (/proc/net/unix) is useless too.
    """

    def __init__(self, tmux: str, directory: Path, account: Account, worktree_id: str, *, shared: bool) -> None:
        super().__init__(tmux_bin=tmux)
        self.directory, self.account, self.worktree_id = directory, account, worktree_id
        self.shared = shared  # other accounts' clients may join (strict mode, tmux's server-access)
        self.env = unix_accounts.login_env(account)
        self._fd: int | None = None

    @property
    def socket_path(self) -> str:  # type: ignore[override]  (a libtmux listing run as the app finds nothing there)
        return self.reach('tmux')

    @property
    def socket(self) -> Path:
        """The socket's real path (for the app and tests, which run as root or as the account itself)."""
        return self.directory / 'tmux'

    @property
    def session_name(self) -> str:
        return f'v-{self.worktree_id}'

    def reach(self, name: str) -> str:
        """How a tmux process the app starts names a file of the server's directory (see the class)."""
        return f'/proc/self/fd/{self._open()}/{name}' if PROC_FD.is_dir() else str(self.directory / name)

    @property
    def pass_fds(self) -> tuple[int, ...]:
        return (self._open(),) if PROC_FD.is_dir() else ()

    def cmd(self, cmd: str, *args: object, target: str | int | None = None,
            env: dict[str, str] | None = None) -> tmux_cmd:
        """libtmux's `Server.cmd`, run as the account; `env` is the process environment (the account's login one)."""
        argv = [str(self.tmux_bin), '-u', '-f', self.reach('tmux.conf'), '-S', self.reach('tmux'), cmd,
                *(('-t', str(target)) if target is not None else ()), *(str(arg) for arg in args)]
        try:
            result = subprocess.run(argv, capture_output=True, text=True, errors='backslashreplace', check=False,
                                    env=env or self.env, timeout=COMMAND_TIMEOUT, stdin=subprocess.DEVNULL, cwd='/',
                                    pass_fds=self.pass_fds, **unix_accounts.spawn_as(self.account))
        except subprocess.TimeoutExpired:
            raise TmuxError(f'tmux {cmd} did not answer within {COMMAND_TIMEOUT} s.') from None
        return AccountCommand(argv, result)

    def run(self, cmd: str, *args: object, target: str | int | None = None,
            env: dict[str, str] | None = None) -> list[str]:
        """`cmd`, or TmuxError when tmux refuses it; its output lines."""
        proc = self.cmd(cmd, *args, target=target, env=env)
        if proc.returncode != 0:
            raise TmuxError(f'tmux {cmd} failed: {" ".join(proc.stderr) or proc.returncode}')
        return proc.stdout

    # ---- the worktree's shell ---------------------------------------------------------------------------------------

    def start(self, worktree: Worktree, host_id: str, env: dict[str, str]) -> Shell:
        """Start the server with the worktree's shell. The shell's environment is this command's own process
        environment, which tmux copies into the new server (never `-e NAME=value` arguments, which `ps` shows)."""
        self._make_directory()
        directory = self._open()
        with unix_accounts.files_as(self.account):  # the account's directory: write as the account
            with contextlib.suppress(FileNotFoundError):
                os.unlink('tmux.conf', dir_fd=directory)
            fd = os.open('tmux.conf', os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o644, dir_fd=directory)
            with os.fdopen(fd, 'w') as conf:
                conf.write(TMUX_CONF)  # read when this command starts the server
        [ids] = self.run('new-session', '-d', '-s', self.session_name, '-x', '80', '-y', '24', '-n', worktree.name,
                         '-c', worktree.path, '-P', '-F', '#{window_id} #{pane_id}', env=env)
        window_id, pane_id = ids.split()
        if self.shared:
            self.socket.chmod(0o666)  # tmux itself refuses every account that server-access has not allowed
        shell = Shell(self, libtmux.Window(server=self, window_id=window_id),
                      libtmux.Pane(server=self, pane_id=pane_id), host_id)
        try:
            shell.window.set_option(WORKTREE_OPTION, self.worktree_id)
            shell.window.set_option(HOST_OPTION, host_id)
        except LibTmuxException as error:
            raise TmuxError(f'tmux set-option failed: {error}') from None
        return shell

    def shell(self) -> Shell | None:
        """The worktree's shell, if this server runs (found by its window options, also after an app restart)."""
        if not self.socket.exists():
            return None
        proc = self.cmd('list-windows', '-a', '-F', f'#{{window_id}} #{{pane_id}} #{{{WORKTREE_OPTION}}} '
                                                    f'#{{{HOST_OPTION}}}')
        for line in proc.stdout if proc.returncode == 0 else ():
            parts = line.split()
            if len(parts) == 4 and parts[2] == self.worktree_id:
                return Shell(self, libtmux.Window(server=self, window_id=parts[0]),
                             libtmux.Pane(server=self, pane_id=parts[1]), parts[3])
        return None

    # ---- clients ----------------------------------------------------------------------------------------------------

    def attach_argv(self, *, readonly: bool) -> list[str]:
        """A viewer's client (run on a PTY, as the viewer's account): attached to this worktree's session only."""
        flags = ['-f', 'read-only,ignore-size'] if readonly else []
        return ['setsid', '-c', str(self.tmux_bin), '-u', '-S', self.reach('tmux'), 'attach-session', '-t',
                f'={self.session_name}', *flags]

    def allow(self, account: Account, *, write: bool) -> None:
        """Let another account's clients in (strict mode), typing or read-only."""
        self.cmd('server-access', '-a', account.name)  # fails harmlessly when already allowed
        self.run('server-access', '-w' if write else '-r', account.name)

    def deny(self, account: Account) -> None:
        with contextlib.suppress(LibTmuxException):  # not allowed (any more): nothing to take away
            self.server_access(deny=account.name)

    def set_client_readonly(self, tty: str, readonly: bool) -> None:
        """A read-only client neither types nor sizes the window (its size is ignored)."""
        if self.display_message('#{client_readonly}', get_text=True, target_client=tty) != [str(int(readonly))]:
            self.cmd('switch-client', '-c', tty, '-r')  # toggles: refresh-client -f cannot clear read-only
        self.cmd('refresh-client', '-t', tty, '-f', 'ignore-size' if readonly else '!ignore-size')

    def redraw(self, tty: str) -> None:
        """Send the client on `tty` the whole screen again."""
        with contextlib.suppress(LibTmuxException):  # the client has just gone
            self.refresh_client(target_client=tty)

    # ---- lifetime ---------------------------------------------------------------------------------------------------

    def kill(self) -> None:
        if self.socket.exists():
            self.cmd('kill-server')
        self.close()

    def close(self) -> None:
        if self._fd is not None:
            os.close(self._fd)
            self._fd = None

    def _make_directory(self) -> None:
        """`<tmux dir>` (0700, the app's) / `<account>-<worktree id>` (the account's; 0711 when shared, where other
        accounts' clients look the socket up in it)."""
        base = self.directory.parent
        base.mkdir(mode=0o700, exist_ok=True)
        info = base.lstat()
        if not stat.S_ISDIR(info.st_mode) or info.st_uid != os.geteuid():
            raise TerminalUnavailable(f'{base} is not a directory owned by the app\'s account: remove it or set '
                                      'AGOR_TMUX_DIR.')
        base.chmod(0o700)
        self.directory.mkdir(mode=0o700, exist_ok=True)
        if not self.account.is_current:
            os.chown(self.directory, self.account.uid, self.account.gid, follow_symlinks=False)
        self.directory.chmod(0o711 if self.shared else 0o700)

    def _open(self) -> int:
        if self._fd is None:
            self._fd = os.open(self.directory, getattr(os, 'O_PATH', os.O_RDONLY) | os.O_DIRECTORY | os.O_CLOEXEC)
        return self._fd
