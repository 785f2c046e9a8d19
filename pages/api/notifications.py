"""`/notifications`: the caller's inbox (mentions, replies, comments on their worktrees) and marking it read."""
from __future__ import annotations

from fastapi import APIRouter
from pydantic import BaseModel

from agor import notifications

from .base import Actor, CursorParam, LimitParam, Page, paged


class NotificationOut(BaseModel):
    id: str
    kind: str
    title: str
    preview: str
    link: str
    read: bool
    created_at: str


class MarkedOut(BaseModel):
    unread: int


def routes(router: APIRouter) -> None:
    @router.get('/notifications', response_model=Page[NotificationOut], tags=['notifications'])
    def inbox(actor: Actor, unread: bool = False, cursor: CursorParam = None, limit: LimitParam = 50) -> dict:
        """Your newest inbox entries, newest first (without those of boards you can no longer see)."""
        entries = [e for e in notifications.inbox(actor) if not (unread and e['read'])]
        return paged(entries, cursor, limit)

    @router.post('/notifications/{notification_id}/read', response_model=MarkedOut, tags=['notifications'])
    def mark_read(actor: Actor, notification_id: str) -> MarkedOut:
        """Mark one of your entries read (an entry of someone else's inbox is never touched)."""
        notifications.mark_read(actor, notification_id)
        return MarkedOut(unread=notifications.unread_count(actor))

    @router.post('/notifications/read', response_model=MarkedOut, tags=['notifications'])
    def mark_all_read(actor: Actor) -> MarkedOut:
        """Mark your whole inbox read."""
        notifications.mark_read(actor)
        return MarkedOut(unread=notifications.unread_count(actor))
