"""Who may open which terminal, and what a shell starts with."""
from __future__ import annotations

from pathlib import Path

from .. import auth, credentials, db, ids, permissions, unix_accounts
from ..config import Settings
from ..errors import NotFound
from ..models import Role, User, Worktree
from ..unix_accounts import Account


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


def may_start(user: User, worktree: Worktree) -> None:
    """Starting a worktree's shell (the first open) takes a member whose level on the worktree is `session`."""
    auth.require(user, Role.member, 'start a terminal (a member opens it first, then you can watch)')
    permissions.require_worktree_id(user, worktree.id, permissions.Level.session, 'start its terminal')


def level_lets_type(user: User, worktree_id: str) -> bool:
    """Members type unless their level on the worktree is only `view` (a host may make them read-only as well)."""
    level = permissions.level_of(user, worktree_id)
    return user.has(Role.member) and level is not None and level >= permissions.Level.session


def may_see(user: User | None, worktree_id: str) -> bool:
    return user is not None and permissions.level_of(user, worktree_id) is not None


def terminal_env(user: User, worktree: Worktree, account: Account) -> dict[str, str]:
    """The environment a terminal opened by `user` starts with when it runs as `account`: the user's merged
    environment (agor.credentials: the instance's variables, then the user's Global variables and provider keys),
    plus where it runs."""
    env = credentials.merged_env(user, account).env
    env.update(AGOR_WORKTREE=worktree.name, AGOR_WORKTREE_PATH=worktree.path, AGOR_BRANCH=worktree.branch)
    return env


def mode_warning(settings: Settings) -> str | None:
    """What admins should know about the configured unix_user_mode (None when there is nothing to warn about)."""
    if settings.unix_user_mode != 'simple':
        return None
    return (f"Simple mode: terminals run as the app's own Unix account ({unix_accounts.current().name}), so anyone "
            f'who can type in a terminal can read what the app can, including the database and the session secret in '
            f'{settings.data_dir}. Set AGOR_UNIX_USER_MODE=insulated or strict unless every member is fully trusted '
            '(docs/terminals.md).')
