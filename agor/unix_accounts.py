"""Unix accounts that terminals run as: lookup, switching to them, and keeping them out of the data dir.

Starting a program as another account needs the app to run as root; root itself is never used to run tmux.
"""
from __future__ import annotations

import os
import pwd
import re
import stat
from dataclasses import dataclass
from pathlib import Path

from .errors import DomainError

NAME = re.compile(r'^[a-z_][a-z0-9_-]{0,31}$')
DEFAULT_PATH = '/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin'
NO_LOGIN = ('nologin', 'false')


class AccountError(DomainError):
    status = 503


@dataclass(frozen=True)
class Account:
    name: str
    uid: int
    gid: int
    home: str
    shell: str

    @property
    def is_current(self) -> bool:
        return self.uid == os.geteuid()


def current() -> Account:
    return _from_pwd(pwd.getpwuid(os.geteuid()))


def lookup(name: str) -> Account:
    """An existing, non-root account by name, or an error that says how to create it."""
    if not NAME.match(name):
        raise AccountError(f'{name!r} is not a valid Unix account name.')
    try:
        entry = pwd.getpwnam(name)
    except KeyError:
        raise AccountError(f'There is no Unix account {name!r} on the server. Create it as root with '
                           f'`useradd --create-home --shell /bin/bash {name}`.') from None
    account = _from_pwd(entry)
    refuse_root(account)
    return account


def refuse_root(account: Account) -> None:
    if account.uid == 0:
        raise AccountError(
            'Terminals never run as root, and the app runs as root. Either run the app as an ordinary account, '
            'or set AGOR_UNIX_USER_MODE=insulated and create the executor account as root: '
            '`useradd --create-home --shell /bin/bash agor-executor` (see docs/terminals.md).')


def spawn_as(account: Account) -> dict:
    """subprocess keyword arguments that run a program as `account` (the app must be that account or root)."""
    refuse_root(account)
    if account.is_current:
        return {}
    if os.geteuid() != 0:
        raise AccountError(f'The app runs as {current().name} and cannot start programs as {account.name}: '
                           'insulated and strict modes need the app to run as root.')
    return {'user': account.uid, 'group': account.gid, 'extra_groups': []}


def login_env(account: Account) -> dict[str, str]:
    """The identity part of a login environment for the account (the rest comes from the acting user)."""
    shell = account.shell if account.shell and not account.shell.endswith(NO_LOGIN) else '/bin/bash'
    return {'HOME': account.home, 'USER': account.name, 'LOGNAME': account.name, 'SHELL': shell,
            'PATH': os.environ.get('PATH', DEFAULT_PATH), 'LANG': 'C.UTF-8'}


def protect_data_dir(data_dir: Path) -> None:
    """Other accounts may pass through the data dir (to reach worktrees) but not list it or read its files.

    The directory becomes 0711, its files 0600 (SQLite gives its -wal/-shm files the database's mode), and its
    subdirectories other than worktrees and repos 0700.
    """
    data_dir.chmod(0o711)
    for entry in data_dir.iterdir():
        mode = entry.lstat().st_mode
        if stat.S_ISLNK(mode):
            continue
        if stat.S_ISDIR(mode):
            entry.chmod(0o755 if entry.name in {'worktrees', 'repos'} else 0o700)
        else:
            entry.chmod(0o600)


def unreachable_parent(account: Account, path: Path) -> Path | None:
    """The first directory on the way to path that the account may not pass through, if any."""
    for directory in [*reversed(path.parents), path]:
        try:
            info = directory.stat()
        except FileNotFoundError:
            return directory
        if not _may_pass(account, info):
            return directory
    return None


def grant_tree(account: Account, root: Path) -> None:
    """Let the account read and write a tree through its group: chgrp to its primary group, g+rwX, setgid dirs.

    The owner stays as it is, so the app's own git commands keep working on the tree.
    """
    if account.is_current or root.stat().st_gid == account.gid:
        return
    for directory, dirs, files in os.walk(root):
        _grant(Path(directory), account.gid, is_dir=True)
        for name in files:
            _grant(Path(directory) / name, account.gid, is_dir=False)
        dirs[:] = [d for d in dirs if not (Path(directory) / d).is_symlink()]


def _grant(path: Path, gid: int, *, is_dir: bool) -> None:
    info = path.lstat()
    if stat.S_ISLNK(info.st_mode):
        return
    os.chown(path, -1, gid)
    extra = stat.S_IRGRP | stat.S_IWGRP
    if is_dir or info.st_mode & stat.S_IXUSR:
        extra |= stat.S_IXGRP
    if is_dir:
        extra |= stat.S_ISGID
    path.chmod(stat.S_IMODE(info.st_mode) | extra)


def _may_pass(account: Account, info: os.stat_result) -> bool:
    """Search (x) permission on a directory, as the kernel decides it for the account."""
    if account.uid == info.st_uid:
        return bool(info.st_mode & stat.S_IXUSR)
    if info.st_gid in os.getgrouplist(account.name, account.gid):
        return bool(info.st_mode & stat.S_IXGRP)
    return bool(info.st_mode & stat.S_IXOTH)


def _from_pwd(entry: pwd.struct_passwd) -> Account:
    return Account(name=entry.pw_name, uid=entry.pw_uid, gid=entry.pw_gid, home=entry.pw_dir, shell=entry.pw_shell)
