"""Comments: a board's threads with the panel's filters, start a thread (on the board, a zone, a worktree or a
session), reply, resolve, react. Mentions (`@Name`) notify as they do in the UI."""
from __future__ import annotations

from typing import Any, Literal

from fastapi import APIRouter, Query
from pydantic import BaseModel

from agor import boards, comments

from .base import Actor, CursorParam, LimitParam, Page, Point, paged
from .worktrees import resolve_worktree


class Reaction(BaseModel):
    emoji: str
    users: list[str]
    names: list[str]


class CommentOut(BaseModel):
    id: str
    parent_id: str | None
    author_id: str
    author: str
    body: str
    html: str
    mentions: list[str]
    deleted: bool
    edited: bool
    created_at: str
    updated_at: str
    reactions: list[Reaction]


class Pin(BaseModel):
    anchor: str
    target: str | None
    dx: float
    dy: float


class ThreadOut(BaseModel):
    id: str
    target_type: str
    target_id: str | None
    target_label: str
    detached_from: str | None
    resolved: bool
    resolved_by: str | None
    pin: Pin | None
    comments: list[CommentOut]
    updated_at: str


class ThreadIn(BaseModel):
    body: str
    target_type: Literal['board', 'zone', 'worktree', 'session'] = 'board'
    target_id: str | None = None
    pin: Point | None = None  # an absolute canvas point


class ReplyIn(BaseModel):
    body: str


class ResolveIn(BaseModel):
    resolved: bool = True


class ReactionIn(BaseModel):
    emoji: str


class ReactionOut(BaseModel):
    added: bool  # false: your reaction was there and is taken back


Filter = Literal['active', 'resolved', 'mine', 'mentions']


def routes(router: APIRouter) -> None:
    tags = ['comments']

    @router.get('/boards/{board}/comments', response_model=Page[ThreadOut], tags=tags)
    def list_threads(actor: Actor, board: str, filter: Filter = 'active',  # the panel's word
                     q: str = Query('', max_length=200, description='matches comment text and author names'),
                     cursor: CursorParam = None, limit: LimitParam = 50) -> dict:
        """The board's threads as the Comments panel filters them, oldest first."""
        found = comments.threads(actor, boards.get_board(actor, board).id)
        return paged(comments.filter_threads(found, actor.id, filter, q), cursor, limit)

    @router.post('/boards/{board}/comments', response_model=ThreadOut, status_code=201, tags=tags)
    def start_thread(actor: Actor, board: str, body: ThreadIn) -> dict:
        board_id = boards.get_board(actor, board).id
        target_id = body.target_id
        if body.target_type == 'worktree' and target_id:
            target_id = resolve_worktree(actor, target_id)['id']
        comment = comments.create(actor, board_id, body.body, target_type=body.target_type, target_id=target_id,
                                  pin=(body.pin.x, body.pin.y) if body.pin else None)
        return _thread(actor, board_id, comment.id)

    @router.post('/comments/{comment_id}/replies', response_model=CommentOut, status_code=201, tags=tags)
    def reply(actor: Actor, comment_id: str, body: ReplyIn) -> dict:
        """Reply to a thread (its first comment)."""
        comment = comments.reply(actor, comment_id, body.body)
        thread = _thread(actor, comment.board_id, comment_id)
        return next(c for c in thread['comments'] if c['id'] == comment.id)

    @router.post('/comments/{comment_id}/resolve', response_model=ThreadOut, tags=tags)
    def resolve(actor: Actor, comment_id: str, body: ResolveIn) -> dict:
        """Resolve (or reopen, with `resolved: false`) a thread."""
        root = comments.set_resolved(actor, comment_id, body.resolved)
        return _thread(actor, root.board_id, root.id)

    @router.post('/comments/{comment_id}/reactions', response_model=ReactionOut, tags=tags)
    def react(actor: Actor, comment_id: str, body: ReactionIn) -> ReactionOut:
        """Add your reaction (one of 👍 ❤️ 🎉 😄 😕 👀 🚀), or take it back if it is there."""
        return ReactionOut(added=comments.toggle_reaction(actor, comment_id, body.emoji))


def _thread(actor: Actor, board_id: str, thread_id: str) -> dict[str, Any]:
    return next(t for t in comments.threads(actor, board_id) if t['id'] == thread_id)
