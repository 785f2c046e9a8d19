"""Repositories and their worktrees: real `git worktree add` under the data dir, archive, restore, delete."""
from __future__ import annotations

import re
import shutil
from pathlib import Path
from typing import Any

from sqlmodel import Session, select

from . import agent_sessions, boards, canvas, comments, db, gitops, ids, permissions, terminals
from .auth import require
from .config import Settings
from .errors import Conflict, Forbidden, InvalidInput, NotFound
from .events import WORKTREES_TOPIC, WorktreeGone
from .models import AgentSession, CardPlacement, Repo, Role, User, Worktree
from .permissions import Level

NAME = re.compile(r'^[a-z0-9][a-z0-9._-]{0,62}$')
LINK = re.compile(r'^https?://[^\s<>"]+$')


def register_local(settings: Settings, actor: User, path: str, name: str | None = None) -> Repo:
    """Register a repository that already exists on the server, below one of the allowed roots."""
    require(actor, Role.admin, 'register repositories')
    if not path.strip():
        raise InvalidInput('Enter the path of a git repository on the server.')
    top = gitops.toplevel(Path(path.strip()).expanduser().resolve())
    _check_inside_roots(settings, top)
    return _add_repo(actor, top, name or top.name, remote=None)


def clone(settings: Settings, actor: User, source: str, name: str | None = None, *,
          progress: gitops.Progress | None = None) -> Repo:
    """Clone from a path or URL into the data dir and register the clone, reporting git's progress to `progress`.
    A path on the server (or a file:// URL) must be below the allowed roots, as for registering one: a clone would
    copy it into the data dir. A failed clone leaves nothing behind, and its message says what to do next."""
    require(actor, Role.admin, 'register repositories')
    source = source.strip()
    if not source:
        raise InvalidInput('Enter a path or URL to clone from.')
    local = gitops.clone_source_path(source)
    if local is not None:
        _check_inside_roots(settings, local.resolve())
    base = name or source.rstrip('/').rsplit('/', 1)[-1].removesuffix('.git')
    slug = _slug(base)
    target = settings.repos_dir / slug
    if target.exists():
        raise Conflict(f'A clone named {slug} already exists in the data dir; choose another name.')
    try:
        gitops.clone(source, target, progress)
        if progress:
            progress('Registering the repository', None)
        return _add_repo(actor, target.resolve(), base, remote=source)
    except gitops.GitError as error:  # git removes a clone it gave up on itself; one it was killed in stays
        if isinstance(error, gitops.GitTimeout):
            shutil.rmtree(target, ignore_errors=True)
        raise gitops.GitError(f'The clone failed: {error.message} Check the path or URL (and, for a remote, that '
                              'this server can reach it), then try again; a very large repository can be cloned on '
                              'the server and registered with “Use in place”.') from None
    except Exception:
        shutil.rmtree(target, ignore_errors=True)
        raise


def _check_inside_roots(settings: Settings, path: Path) -> None:
    """`path` (resolved: no symlink or `..` leads elsewhere) must be one of the allowed roots or below one."""
    if not any(path == root or root in path.parents for root in settings.allowed_repo_roots()):
        allowed = ', '.join(str(r) for r in settings.allowed_repo_roots())
        raise Forbidden(f'{path} is outside the allowed roots ({allowed}). Set AGOR_REPO_ROOTS to allow it.')


def list_repos() -> list[Repo]:
    with db.read() as session:
        return list(session.exec(select(Repo).order_by(Repo.name)).all())


def list_worktrees(user: User, repo_id: str | None = None, *, archived: bool | None = False) -> list[dict[str, Any]]:
    """The worktrees that exist for the user (agor.permissions), with their repo name and the board they sit on."""
    with db.read() as session:
        hidden = permissions.hidden_board_ids(session, user)
        query = select(Worktree, Repo, CardPlacement.board_id).join(Repo).outerjoin(
            CardPlacement, CardPlacement.worktree_id == Worktree.id).order_by(Repo.name, Worktree.name)
        if repo_id:
            query = query.where(Worktree.repo_id == repo_id)
        if archived is not None:
            query = query.where(Worktree.archived == archived)
        rows = [(w, r, board_id, permissions.worktree_level(session, user, w, hidden))
                for w, r, board_id in session.exec(query).all()]
    return [{'id': w.id, 'name': w.name, 'branch': w.branch, 'path': w.path, 'repo': r.name, 'repo_id': r.id,
             'archived': w.archived, 'board_id': board_id, 'level': level.name}
            for w, r, board_id, level in rows if level is not None]


def worktree_details(user: User, worktree_id: str) -> dict[str, Any]:
    """What the card dialog shows, with what this user may do (`rights`, agor.permissions.worktree_rights)."""
    with db.read() as session:
        worktree = ids.resolve(session, Worktree, worktree_id, 'worktree')
        rights = permissions.worktree_rights(session, user, worktree)
    return {'path': worktree.path, 'created_by': rights['owner'], 'created_at': worktree.created_at,
            'notes': worktree.notes, 'issue_url': worktree.issue_url or '', 'pr_url': worktree.pr_url or '',
            'rights': rights}


def set_level(actor: User, worktree_id: str, level: str) -> Worktree:
    """What people other than its owner and admins may do with the worktree (view < session < prompt < all)."""
    wanted = permissions.parse_level(level)
    with db.transaction() as session:
        worktree = ids.resolve(session, Worktree, worktree_id, 'worktree')
        permissions.require_set_level(session, actor, worktree)
        worktree.others_can = wanted.name
    terminals.rights_changed(worktree.id)
    return worktree


def update_worktree_details(actor: User, worktree_id: str, *, notes: str, issue_url: str, pr_url: str) -> Worktree:
    """A worktree's notes and its issue and pull request links (zone trigger templates can use them)."""
    require(actor, Role.member, 'edit worktrees')
    if not isinstance(notes, str) or len(notes) > 20000:
        raise InvalidInput('Notes are text of at most 20,000 characters.')
    links = {what: _clean_link(value, what) for what, value in (('issue', issue_url), ('pull request', pr_url))}
    with db.transaction() as session:
        worktree = ids.resolve(session, Worktree, worktree_id, 'worktree')
        permissions.require_worktree(session, actor, worktree, Level.all, 'edit its notes and links')
        worktree.notes, worktree.issue_url, worktree.pr_url = notes.strip(), links['issue'], links['pull request']
        return worktree


def _clean_link(value: Any, what: str) -> str | None:
    if not isinstance(value, str) or not value.strip():
        return None
    value = value.strip()
    if not LINK.match(value) or len(value) > 1024:
        raise InvalidInput(f'The {what} link must be an http:// or https:// address.')
    return value


def create_worktree(settings: Settings, actor: User, repo_id: str, name: str, branch: str | None = None, *,
                    new_branch: bool = True, base: str | None = None, board_id: str | None = None,
                    progress: gitops.Progress | None = None) -> Worktree:
    """`git worktree add` under <data>/worktrees/<repo>/<name> with a new branch (from base) or an existing one,
    reporting its checkout to `progress`. Created for a board (`board_id`), it starts with that board's level for
    others (agor.permissions)."""
    require(actor, Role.member, 'create worktrees')
    name = name.strip().lower()
    if not NAME.match(name):
        raise InvalidInput('A worktree name uses lower-case letters, digits, ".", "_" and "-" (at most 63).')
    branch = gitops.check_branch_name(branch or name)
    with db.read() as session:
        others_can = permissions.level_for_new_worktree(session, actor, board_id)
        repo = ids.resolve(session, Repo, repo_id, 'repository')
        if session.exec(select(Worktree).where(Worktree.repo_id == repo.id, Worktree.name == name)).first():
            raise Conflict(f'{repo.name} already has a worktree named {name}.')
    repo_path = Path(repo.path)
    if new_branch and gitops.branch_exists(repo_path, branch):
        raise Conflict(f'Branch {branch} already exists: choose “existing branch” or another name.')
    if not new_branch and not gitops.branch_exists(repo_path, branch):
        raise NotFound(f'There is no branch {branch} in {repo.name}.')
    base = (base or '').strip() or repo.default_branch
    if new_branch and not gitops.ref_exists(repo_path, base):
        raise NotFound(f'There is no commit or branch {base} in {repo.name} to start from.')
    path = (settings.worktrees_dir / repo.slug / name).resolve()
    if path.exists():
        raise Conflict(f'{path} already exists on disk.')
    try:
        gitops.worktree_add(repo_path, path, branch, new_branch=new_branch, base=base if new_branch else None,
                            progress=progress)
    except gitops.GitError as error:  # git cleans up after itself (and the path may be a racing teammate's)
        raise gitops.GitError(f'Creating the worktree failed: {error.message} Check that the server has disk space '
                              'and that the repository is healthy (git worktree list), then try again.') from None
    if progress:
        progress('Registering the worktree', None)
    try:
        with db.transaction() as session:
            worktree = Worktree(repo_id=repo.id, name=name, branch=branch, path=str(path),
                                base_ref=base if new_branch else None, created_by=actor.id, others_can=others_can)
            session.add(worktree)
            return worktree
    except Exception:
        gitops.worktree_remove(repo_path, path)
        raise


def set_archived(actor: User, worktree_id: str, archived: bool) -> Worktree:
    """Archiving takes the card off its board, hides the worktree and ends what runs in it (its sessions' runs and
    queued prompts, its shell); the checkout stays on disk."""
    require(actor, Role.member, 'archive worktrees')
    with db.transaction() as session:
        worktree = ids.resolve(session, Worktree, worktree_id, 'worktree')
        permissions.require_worktree(session, actor, worktree, Level.all, 'archive or restore it')
        worktree.archived = archived
        if archived:
            _take_off_board(session, worktree, actor)
            _gone(session, worktree, f'{worktree.name} was archived by {actor.name}')
    return worktree


def delete_worktree(actor: User, worktree_id: str) -> None:
    """Removes the checkout (`git worktree remove --force`) and the record; the branch stays in the repo. First the
    worktree is archived and what runs in it is ended, so if git fails it stays archived and can be deleted again."""
    require(actor, Role.member, 'delete worktrees')
    with db.read() as session:
        worktree = ids.resolve(session, Worktree, worktree_id, 'worktree')
        permissions.require_worktree(session, actor, worktree, Level.all, 'delete it')
        repo = session.get(Repo, worktree.repo_id)
    assert repo is not None
    with db.transaction() as session:
        fresh = session.get(Worktree, worktree.id)
        if fresh is not None:
            fresh.archived = True
            _gone(session, fresh, f'{fresh.name} was deleted by {actor.name}')
    gitops.worktree_remove(Path(repo.path), Path(worktree.path))
    with db.transaction() as session:
        fresh = session.get(Worktree, worktree.id)
        if fresh is not None:
            placements = session.exec(select(CardPlacement).where(CardPlacement.worktree_id == fresh.id)).all()
            comments.detach_targets(session, 'worktree', fresh.id, f'worktree {fresh.name}',
                                    {p.board_id: canvas.card_origin(session, p) for p in placements})
            for agent in session.exec(select(AgentSession).where(AgentSession.worktree_id == fresh.id)):
                comments.detach_targets(session, 'session', agent.id, f'session “{agent.title}”', {})
            _take_off_board(session, fresh, actor)
            session.delete(fresh)


def _gone(session: Session, worktree: Worktree, reason: str) -> None:
    """Its sessions' queued prompts are dropped now; after the commit, `worktree_gone` tells the session workers to
    stop their runs and the terminal service to close its shell (both say `reason` to whoever is watching)."""
    agent_sessions.close_worktree(session, worktree)
    db.emit_after_commit(session, WORKTREES_TOPIC, WorktreeGone(type='worktree_gone', worktree_id=worktree.id,
                                                                reason=reason))


def _take_off_board(session: Session, worktree: Worktree, actor: User) -> None:
    placement = session.exec(select(CardPlacement).where(CardPlacement.worktree_id == worktree.id)).first()
    if placement is not None:
        session.delete(placement)
        boards.emit_card_removed(session, placement.board_id, worktree.id, actor)


def _add_repo(actor: User, path: Path, name: str, remote: str | None) -> Repo:
    with db.transaction() as session:
        if session.exec(select(Repo).where(Repo.path == str(path))).first():
            raise Conflict(f'{path} is already registered.')
        slug = _slug(name)
        taken = set(session.exec(select(Repo.slug)).all())
        unique, n = slug, 2
        while unique in taken:
            unique, n = f'{slug}-{n}', n + 1
        repo = Repo(slug=unique, name=name.strip()[:120] or unique, path=str(path), remote_url=remote,
                    default_branch=gitops.default_branch(path), created_by=actor.id)
        session.add(repo)
        return repo


def _slug(text: str) -> str:
    slug = re.sub(r'[^a-z0-9._-]+', '-', text.strip().lower()).strip('-.')[:60]
    if not slug:
        raise InvalidInput('Give the repository a name made of letters or digits.')
    return slug
