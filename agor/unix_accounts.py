"""The Unix accounts terminals and agents run as (`unix_user_mode`): which one for whom, switching to it, creating
the executor account, and keeping every such account out of the data dir.

Starting a program as another account needs the app to run as root; root itself never runs a shell or an agent.
"""
from __future__ import annotations

import contextlib
import ctypes
import logging
import os
import pwd
import re
import shutil
import stat
import struct
import subprocess
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

from .config import Settings
from .errors import DomainError
from .models import User

log = logging.getLogger('agor.unix_accounts')

NAME = re.compile(r'^[a-z_][a-z0-9_-]{0,31}$')
DEFAULT_PATH = '/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin'
NO_LOGIN = ('nologin', 'false')
AGENT_HOMES = 'agent-homes'
ACL_USER, ACL_MASK = 0x02, 0x10  # tags of POSIX ACL entries (linux/posix_acl_xattr.h)
PASSABLE_DIRS = {'worktrees': 0o755, 'repos': 0o755, AGENT_HOMES: 0o711}
notes: list[str] = []  # what prepare() found worth telling an admin


class AccountError(DomainError, status=503):
    """The Unix account a run or terminal needs cannot be found, created or used."""


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
    if not _must_switch(account):
        return {}
    return {'user': account.uid, 'group': account.gid, 'extra_groups': []}


def become(account: Account):
    """The same as a `preexec_fn`, for event loops whose subprocesses take no user/group (uvloop's)."""
    if not _must_switch(account):
        return None

    def switch() -> None:  # in the forked child, before exec
        os.setgroups([])
        os.setgid(account.gid)
        os.setuid(account.uid)
    return switch


def _must_switch(account: Account) -> bool:
    refuse_root(account)
    if account.is_current:
        return False
    if os.geteuid() != 0:
        raise AccountError(f'The app runs as {current().name} and cannot start programs as {account.name}: '
                           'insulated and strict modes need the app to run as root.')
    return True


def login_env(account: Account) -> dict[str, str]:
    """The identity part of a login environment for the account (the rest comes from the acting user)."""
    shell = account.shell if account.shell and not account.shell.endswith(NO_LOGIN) else '/bin/bash'
    return {'HOME': account.home, 'USER': account.name, 'LOGNAME': account.name, 'SHELL': shell,
            'PATH': os.environ.get('PATH', DEFAULT_PATH), 'LANG': 'C.UTF-8'}


def account_for(settings: Settings, user: User) -> Account:
    """The Unix account `user`'s terminals and agents run as: the app's own (simple), the executor (insulated) or
    the user's own mapped account (strict). Never root."""
    if settings.unix_user_mode == 'simple':
        account = current()
        refuse_root(account)
        return account
    if settings.unix_user_mode == 'insulated':
        account = lookup(settings.executor_account)
        if account.is_current:
            raise AccountError(f"Insulated mode needs an executor account other than the app's own ({account.name}): "
                               'set AGOR_EXECUTOR_ACCOUNT.')
        return account
    name = settings.unix_accounts.get(user.email)
    if not name:
        raise AccountError(f'Strict mode: your account ({user.email}) has no Unix account yet. An admin maps it with '
                           f'AGOR_UNIX_ACCOUNTS="{user.email}=<unix name>" (docs/terminals.md).')
    return lookup(name)


def prepare(settings: Settings) -> None:
    """At start-up, before any terminal or agent runs: create the executor account if insulated mode needs it (as
    root), and lock the data dir away from the accounts shells and agents run as. What an admin should know is
    logged and kept in `notes` (the admin page shows it)."""
    notes.clear()
    if settings.unix_user_mode_auto and settings.unix_user_mode == 'insulated':
        notes.append('The app runs as root and AGOR_UNIX_USER_MODE is not set, so it uses insulated mode: terminals '
                     f'and agents run as the executor account {settings.executor_account}, never as root.')
    if settings.unix_user_mode == 'insulated' and os.geteuid() == 0 and not _exists(settings.executor_account):
        try:
            notes.append(create_account(settings.executor_account))
        except AccountError as exc:
            notes.append(exc.message)
    if settings.unix_user_mode != 'simple':
        protect_data_dir(settings.data_dir)
        if settings.unix_user_mode == 'insulated' and _exists(settings.executor_account):
            let_through(lookup(settings.executor_account), settings.worktrees_dir)
    for note in notes:
        log.warning(note)


def create_account(name: str) -> str:
    """Create an ordinary login account (as root) and say so."""
    if not NAME.match(name):
        raise AccountError(f'{name!r} is not a valid Unix account name.')
    if not shutil.which('useradd'):
        raise AccountError(f'There is no Unix account {name!r} and no useradd to create it: create it yourself.')
    done = subprocess.run(['useradd', '--create-home', '--shell', '/bin/bash', name], capture_output=True, text=True)
    if done.returncode != 0:
        raise AccountError(f'Could not create the Unix account {name!r}: {done.stderr.strip()}')
    return f'Created the Unix account {name} for terminals and agents (useradd --create-home {name}).'


def protect_data_dir(data_dir: Path) -> None:
    """Other accounts may pass through the data dir (to reach worktrees and their agent homes) but not list it or
    read its files.

    The directory becomes 0711, its files 0600 (SQLite gives its -wal/-shm files the database's mode), its
    subdirectories 0700 except worktrees and repos (0755) and agent-homes (0711: each home is its account's, 0700).
    The app's storage dirs are made here first, so that they never exist with looser modes.
    """
    data_dir.chmod(0o711)
    for name in ('sessions', AGENT_HOMES, 'worktrees'):
        (data_dir / name).mkdir(mode=PASSABLE_DIRS.get(name, 0o700), exist_ok=True)
    for entry in data_dir.iterdir():
        mode = entry.lstat().st_mode
        if stat.S_ISLNK(mode):
            continue
        if stat.S_ISDIR(mode):
            entry.chmod(PASSABLE_DIRS.get(entry.name, 0o700))
        else:
            entry.chmod(0o600)


def agent_home(settings: Settings, user: User, account: Account) -> Path:
    """The user's CLI state (configs, conversations to resume) under data/agent-homes, owned by the account their
    agents run as (handed over when the account changed, e.g. after a switch of unix_user_mode)."""
    homes = settings.data_dir / AGENT_HOMES
    homes.mkdir(mode=0o700, exist_ok=True)
    if not account.is_current:
        homes.chmod(0o711)
    home = homes / user.id
    home.mkdir(mode=0o700, exist_ok=True)
    if home.lstat().st_uid != account.uid:
        _chown_tree(home, account)
    return home


def open_worktree(account: Account, path: Path) -> None:
    """Let the account work in the checkout at path (and its repository's git directory) through its group, or say
    which directory on the way blocks it."""
    if account.is_current:
        return
    blocked = unreachable_parent(account, path)
    if blocked is not None:
        raise AccountError(f'The Unix account {account.name} cannot reach {path}: {blocked} does not let it through. '
                           f'Make it passable (chmod o+x {blocked}) or move the data dir (AGOR_DATA_DIR) somewhere '
                           'every account can pass through.')
    grant_tree(account, path)
    common = _git_common_dir(path)
    if common is not None and unreachable_parent(account, common) is None:
        grant_tree(account, common)
        keep_git_commands_the_apps(common)


def keep_git_commands_the_apps(common: Path) -> None:
    """The account may add objects and refs to the repository, but not change what git runs commands from (`config`:
    fsmonitor, filters, ...; `hooks`), since the app's own git runs in this repository as the app's account. The git
    directory is made sticky, so those files cannot be renamed away and replaced either."""
    common.chmod(stat.S_IMODE(common.stat().st_mode) | stat.S_ISVTX)
    (common / 'hooks').mkdir(exist_ok=True)  # the app's, so the account cannot make one
    for name in ('config', 'hooks', 'info'):
        if (common / name).exists():
            _each_in_tree(common / name, lambda info, fd: os.fchmod(fd, stat.S_IMODE(info.st_mode) & ~stat.S_IWGRP))


@contextlib.contextmanager
def files_as(account: Account | None) -> Iterator[None]:
    """Within the block, this thread creates and opens files as `account` (Linux fsuid/fsgid): what the app writes
    into an account's directories belongs to it, and a symlink planted there grants no more than the account has.
    The block must not await (the fs identity belongs to the thread)."""
    if account is None or account.is_current:
        yield
        return
    libc = ctypes.CDLL(None, use_errno=True)
    libc.setfsgid(account.gid)
    libc.setfsuid(account.uid)
    try:
        if libc.setfsuid(-1) != account.uid:  # -1 changes nothing, it reads
            raise AccountError(f'Could not act on files as {account.name}.')
        yield
    finally:
        libc.setfsuid(os.geteuid())
        libc.setfsgid(os.getegid())


def let_through(account: Account, path: Path) -> None:
    """The README's path clones into /root (0700) as root: give the account search permission, and nothing else, on
    each directory on the way to `path` that stops it, as a POSIX ACL entry (`setfacl -m u:<account>:x`), so that
    terminals and agents work out of the box. Without setfacl, say what to do instead."""
    while (blocked := unreachable_parent(account, path)) is not None and blocked.exists():
        done = subprocess.run(['setfacl', '-m', f'u:{account.name}:x', str(blocked)], capture_output=True, text=True,
                              check=False) if shutil.which('setfacl') else None
        if done is None or done.returncode != 0:
            notes.append(f'The executor account cannot reach the worktrees: {blocked} does not let it through. '
                         f'Make it passable (setfacl -m u:{account.name}:x {blocked}, or chmod o+x {blocked}) or '
                         'move the data dir (AGOR_DATA_DIR).')
            return
        notes.append(f'Let {account.name} pass through {blocked} (an ACL entry with search permission only) to reach '
                     'the worktrees.')


def unreachable_parent(account: Account, path: Path) -> Path | None:
    """The first directory on the way to path that the account may not pass through, if any."""
    for directory in [*reversed(path.parents), path]:
        try:
            info = directory.stat()
        except FileNotFoundError:
            return directory
        if not _may_pass(account, info) and not _acl_lets_pass(account, directory):
            return directory
    return None


def grant_tree(account: Account, root: Path) -> None:
    """Let the account read and write a tree through its group: chgrp to its primary group, g+rwX, setgid dirs.

    The owner stays as it is, so the app's own git commands keep working on the tree. Accounts may write in the
    tree while this runs, so every change goes through a file descriptor opened without following symlinks.
    """
    if account.is_current or root.stat().st_gid == account.gid:
        return

    def grant(info: os.stat_result, fd: int) -> None:
        os.fchown(fd, -1, account.gid)
        extra = stat.S_IRGRP | stat.S_IWGRP
        if stat.S_ISDIR(info.st_mode) or info.st_mode & stat.S_IXUSR:
            extra |= stat.S_IXGRP
        if stat.S_ISDIR(info.st_mode):
            extra |= stat.S_ISGID
        os.fchmod(fd, stat.S_IMODE(info.st_mode) | extra)
    _each_in_tree(root, grant)


def _chown_tree(root: Path, account: Account) -> None:
    def chown(info: os.stat_result, fd: int) -> None:
        if info.st_uid != account.uid:
            os.fchown(fd, account.uid, account.gid)
    _each_in_tree(root, chown)


def _each_in_tree(root: Path, change) -> None:
    """change(stat, fd) for every directory and regular file of the tree (symlinks and special files skipped); a
    root that is a file is changed itself."""
    if not root.is_dir():
        parent = os.open(root.parent, os.O_RDONLY | os.O_DIRECTORY)
        try:
            _change_entry(root.name, parent, change)
        finally:
            os.close(parent)
        return
    for _directory, _dirs, files, dir_fd in os.fwalk(root):
        _change_entry('.', dir_fd, change)
        for name in files:
            _change_entry(name, dir_fd, change)


def _change_entry(name: str, dir_fd: int, change) -> None:
    try:
        fd = os.open(name, os.O_RDONLY | os.O_NOFOLLOW | os.O_NONBLOCK | os.O_NOCTTY, dir_fd=dir_fd)
    except OSError:  # a symlink (ELOOP), or gone meanwhile
        return
    try:
        info = os.fstat(fd)
        if stat.S_ISDIR(info.st_mode) or stat.S_ISREG(info.st_mode):
            change(info, fd)
    finally:
        os.close(fd)


def _may_pass(account: Account, info: os.stat_result) -> bool:
    """Search (x) permission on a directory, as the kernel decides it for the account."""
    if account.uid == info.st_uid:
        return bool(info.st_mode & stat.S_IXUSR)
    if info.st_gid in os.getgrouplist(account.name, account.gid):
        return bool(info.st_mode & stat.S_IXGRP)
    return bool(info.st_mode & stat.S_IXOTH)


def _acl_lets_pass(account: Account, directory: Path) -> bool:
    """A POSIX ACL entry naming the account with search permission (within the ACL's mask), as `let_through` adds.
    The xattr holds a version word, then (tag, permissions, id) entries."""
    try:
        raw = os.getxattr(directory, 'system.posix_acl_access')
    except OSError:
        return False
    entries = [struct.unpack_from('<HHI', raw, offset) for offset in range(4, len(raw) - 7, 8)]
    mask = next((perm for tag, perm, _ in entries if tag == ACL_MASK), 0o7)
    return any(tag == ACL_USER and uid == account.uid and perm & mask & 0o1 for tag, perm, uid in entries)


def _exists(name: str) -> bool:
    try:
        pwd.getpwnam(name)
    except KeyError:
        return False
    return True


def _git_common_dir(path: Path) -> Path | None:
    result = subprocess.run(['git', 'rev-parse', '--path-format=absolute', '--git-common-dir'], cwd=path,
                            capture_output=True, text=True, stdin=subprocess.DEVNULL)
    return Path(result.stdout.strip()) if result.returncode == 0 and result.stdout.strip() else None


def _from_pwd(entry: pwd.struct_passwd) -> Account:
    return Account(name=entry.pw_name, uid=entry.pw_uid, gid=entry.pw_gid, home=entry.pw_dir, shell=entry.pw_shell)
