"""The in-app inbox: one entry per thing that needs a person (a mention, a reply, a comment on their worktree).

Entries are written in the transaction that caused them and announced on `user:<id>` after commit, so every open
tab of that person updates its unread badge.
"""
from __future__ import annotations

from typing import Any

from sqlalchemy import func, or_
from sqlmodel import Session, col, select

from . import comment_text, db, permissions
from .events import InboxRead, NotificationAdded, topic
from .models import Board, Comment, Notification, User, utcnow

LIMIT = 50


def add(session: Session, user_id: str, kind: str, actor: User, board: Board, comment: Comment, title: str) -> None:
    recipient = session.get(User, user_id)
    if recipient is None or not permissions.can_view_board(session, recipient, board):
        return  # nothing of a board reaches someone who cannot see it
    entry = Notification(user_id=user_id, kind=kind, actor_id=actor.id, board_id=board.id, comment_id=comment.id,
                         title=title[:200], preview=comment_text.preview(comment.body, 280),
                         link=f'/b/{board.slug}?comment={comment.id}')
    session.add(entry)
    session.flush()
    db.emit_after_commit(session, topic('user', user_id),
                         NotificationAdded(type='notification', notification=view(entry)))


def inbox(user: User) -> list[dict[str, Any]]:
    """The user's newest entries, without those of boards they can no longer see."""
    with db.read() as session:
        entries = session.exec(_mine(session, user).order_by(col(Notification.created_at).desc()).limit(LIMIT)).all()
    return [view(e) for e in entries]


def unread_count(user: User) -> int:
    with db.read() as session:
        query = _mine(session, user).where(col(Notification.read_at).is_(None)).subquery()
        return session.exec(select(func.count()).select_from(query)).one()


def _mine(session: Session, user: User) -> Any:
    hidden = permissions.hidden_board_ids(session, user)
    query = select(Notification).where(Notification.user_id == user.id)
    if not hidden:
        return query
    return query.where(or_(col(Notification.board_id).is_(None), col(Notification.board_id).not_in(hidden)))


def mark_read(user: User, notification_id: str | None = None, *, comment_id: str | None = None) -> None:
    """Mark entries of the user's own inbox as read: one entry, the entries about one comment, or all of them."""
    with db.transaction() as session:
        query = select(Notification).where(Notification.user_id == user.id, col(Notification.read_at).is_(None))
        if notification_id is not None:
            query = query.where(Notification.id == notification_id)
        if comment_id is not None:
            query = query.where(Notification.comment_id == comment_id)
        entries = session.exec(query).all()
        for entry in entries:
            entry.read_at = utcnow()
        if entries:
            db.emit_after_commit(session, topic('user', user.id), InboxRead(type='inbox_read'))


def view(entry: Notification) -> dict[str, Any]:
    return {'id': entry.id, 'kind': entry.kind, 'title': entry.title, 'preview': entry.preview, 'link': entry.link,
            'read': entry.read_at is not None, 'created_at': entry.created_at.isoformat()}
