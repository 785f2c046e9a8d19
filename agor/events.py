"""The event bus: services publish after commit, pages subscribe per topic (`board:<id>`, `user:<id>`, `instance`)
and services too (`worktrees`: `worktree_gone` when a worktree is archived or deleted, which ends its runs and shell).

The in-process bus is the default. A scale-out backend (Redis pub/sub) implements the same two methods and
delivers to the local subscribers of every process.
"""
from __future__ import annotations

import asyncio
import logging
import threading
from collections import defaultdict
from collections.abc import Callable
from typing import Any, Protocol

log = logging.getLogger(__name__)

Callback = Callable[[dict[str, Any]], Any]


class EventBus(Protocol):
    def publish(self, topic: str, payload: dict[str, Any]) -> None: ...

    def subscribe(self, topic: str, callback: Callback) -> Callable[[], None]: ...


class LocalEventBus:
    """Delivers on the event loop it is bound to, whichever thread publishes; synchronously when unbound."""

    def __init__(self) -> None:
        self._subscribers: dict[str, list[Callback]] = defaultdict(list)
        self._loop: asyncio.AbstractEventLoop | None = None
        self._loop_thread: int | None = None

    def bind_loop(self, loop: asyncio.AbstractEventLoop | None) -> None:
        self._loop = loop
        self._loop_thread = threading.get_ident() if loop else None

    def publish(self, topic: str, payload: dict[str, Any]) -> None:
        if self._loop is None or self._loop.is_closed():
            self._deliver(topic, payload)
        elif threading.get_ident() == self._loop_thread:
            self._loop.call_soon(self._deliver, topic, payload)
        else:
            self._loop.call_soon_threadsafe(self._deliver, topic, payload)

    def subscribe(self, topic: str, callback: Callback) -> Callable[[], None]:
        self._subscribers[topic].append(callback)

        def unsubscribe() -> None:
            subscribers = self._subscribers.get(topic, [])
            if callback in subscribers:
                subscribers.remove(callback)
            if not subscribers:
                self._subscribers.pop(topic, None)
        return unsubscribe

    def subscriber_count(self, topic: str) -> int:
        return len(self._subscribers.get(topic, ()))

    def _deliver(self, topic: str, payload: dict[str, Any]) -> None:
        for callback in list(self._subscribers.get(topic, ())):
            try:
                callback(payload)
            except Exception:  # one broken subscriber must not starve the others
                log.exception('event subscriber for %s failed', topic)


bus: EventBus = LocalEventBus()


def board_topic(board_id: str) -> str:
    return f'board:{board_id}'


INSTANCE_TOPIC = 'instance'
WORKTREES_TOPIC = 'worktrees'
