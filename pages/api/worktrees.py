"""`/repos` and `/worktrees`: the repositories to create worktrees in, and the worktrees that exist for the caller.

A worktree is named in a path by its id, a unique id prefix, or its name when only one visible worktree has it."""
from __future__ import annotations

from datetime import datetime
from typing import Any

from fastapi import APIRouter
from pydantic import BaseModel, Field

from agor import boards, repos
from agor.auth import require
from agor.errors import InvalidInput, NotFound
from agor.models import Role, User

from .base import Actor, CursorParam, LimitParam, Page, WithRights, paged, state


class RepoOut(BaseModel):
    id: str
    slug: str
    name: str
    default_branch: str


class WorktreeOut(BaseModel):
    id: str
    name: str
    branch: str
    path: str
    repo: str
    repo_id: str
    archived: bool
    board_id: str | None
    level: str = Field(description='what you may do with it: view < session < prompt < all')


class WorktreeDetail(WorktreeOut, WithRights):
    notes: str
    issue_url: str
    pr_url: str
    created_at: datetime


class WorktreeIn(BaseModel):
    repo: str = Field(max_length=200, description='id, id prefix, slug or name of the repository')
    name: str = Field(max_length=63)
    branch: str | None = Field(None, max_length=200, description='default: the name')
    new_branch: bool = True
    base: str | None = Field(None, max_length=200, description="what a new branch starts from (default: the repo's)")
    board: str | None = Field(None, max_length=200, description='put its card on this board (slug or id)')
    x: float = 0
    y: float = 0


def routes(router: APIRouter) -> None:
    @router.get('/repos', response_model=list[RepoOut], tags=['worktrees'])
    def list_repos(actor: Actor) -> list[dict]:
        return [_repo(r) for r in _repos(actor)]

    @router.get('/worktrees', response_model=Page[WorktreeOut], tags=['worktrees'])
    def list_worktrees(actor: Actor, board: str | None = None, archived: bool = False, cursor: CursorParam = None,
                       limit: LimitParam = 100) -> dict:
        """The worktrees that exist for you (by repository and name), optionally only those on one board."""
        found = repos.list_worktrees(actor, archived=archived)
        if board:
            board_id = boards.get_board(actor, board).id
            found = [w for w in found if w['board_id'] == board_id]
        return paged(found, cursor, limit)

    @router.post('/worktrees', response_model=WorktreeOut, status_code=201, tags=['worktrees'])
    def create_worktree(actor: Actor, body: WorktreeIn) -> dict:
        """`git worktree add` with a new branch (from `base`) or an existing one; with `board`, its card is put on
        that board at (x, y) and it starts with the board's level for others."""
        repo_id = _repo_ref(actor, body.repo)
        board_id = boards.get_board(actor, body.board).id if body.board else None
        worktree = repos.create_worktree(state().settings, actor, repo_id, body.name, body.branch,
                                         new_branch=body.new_branch, base=body.base, board_id=board_id)
        if board_id:
            boards.place_card(actor, board_id, worktree.id, body.x, body.y)
        return resolve_worktree(actor, worktree.id)

    @router.get('/worktrees/{worktree}', response_model=WorktreeDetail, tags=['worktrees'])
    def get_worktree(actor: Actor, worktree: str) -> dict:
        found = resolve_worktree(actor, worktree)
        details = repos.worktree_details(actor, found['id'])
        return {**found, **{k: details[k] for k in ('notes', 'issue_url', 'pr_url', 'created_at', 'rights')}}


def resolve_worktree(actor: User, ref: str) -> dict[str, Any]:
    """The worktree (as `repos.list_worktrees` lists it for `actor`, archived ones included) named by `ref`."""
    visible = repos.list_worktrees(actor, archived=None)
    for matches in ([w for w in visible if w['id'] == ref], [w for w in visible if w['id'].startswith(ref)],
                    [w for w in visible if w['name'] == ref.lower()]):
        if len(matches) == 1:
            return matches[0]
        if len(matches) > 1:
            raise InvalidInput(f'{ref!r} names several worktrees: use its id.')
    raise NotFound(f'No worktree {ref!r}.')


def _repos(actor: User) -> list[Any]:
    require(actor, Role.viewer, 'list repositories')
    return repos.list_repos()


def _repo_ref(actor: User, ref: str) -> str:
    known = _repos(actor)
    for matches in ([r for r in known if r.id == ref], [r for r in known if r.slug == ref.lower()],
                    [r for r in known if r.name == ref], [r for r in known if r.id.startswith(ref)]):
        if len(matches) == 1:
            return matches[0].id
        if len(matches) > 1:
            raise InvalidInput(f'{ref!r} names several repositories: use its id.')
    raise NotFound(f'No repository {ref!r}.')


def _repo(repo: Any) -> dict[str, Any]:
    return {'id': repo.id, 'slug': repo.slug, 'name': repo.name, 'default_branch': repo.default_branch}
