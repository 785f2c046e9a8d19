"""Presence across a cluster's processes, over the bus's `PRESENCE_TOPIC` (Redis, agor.redis_bus).

Each process keeps the viewers connected to it (`agor.presence.Presence`) and shares, at each of a board's ticks,
only what changed among them; it says `alive` every ALIVE_SECONDS, `hello` when it starts (the others then share all
their viewers with it) and `bye` when it stops. A process that dies says nothing: the others drop its viewers once
it has been silent for `presence.ORIGIN_GONE_AFTER` seconds. Without REDIS_URL none of this runs.
"""
from __future__ import annotations

import asyncio
import contextlib
from collections.abc import Callable
from typing import Any

from . import events
from .events import PRESENCE_TOPIC, PresenceEvent, PresenceShared, PresenceSignal
from .presence import Presence

ALIVE_SECONDS = 2.0


class PresenceRelay:
    def __init__(self, presence: Presence, origin: str) -> None:
        self.presence, self.origin = presence, origin
        self._unsubscribe: Callable[[], None] | None = None
        self._task: asyncio.Task | None = None

    def start(self) -> None:
        """On the event loop, with `events.bus` the cluster's bus."""
        self._unsubscribe = events.bus.subscribe(PRESENCE_TOPIC, self._on_event)
        self.presence.share = self._share
        self._task = asyncio.get_running_loop().create_task(self._keep_alive(), name='presence alive')
        self._signal('hello')

    def stop(self) -> None:
        if self._task is not None:
            self._task.cancel()
        if self._unsubscribe is not None:
            self._unsubscribe()
        self.presence.share = None
        self._signal('bye')

    async def _keep_alive(self) -> None:
        with contextlib.suppress(asyncio.CancelledError):
            while True:
                self._signal('alive')
                await asyncio.sleep(ALIVE_SECONDS)

    def _signal(self, kind: Any) -> None:
        events.bus.publish(PRESENCE_TOPIC, PresenceSignal(type=kind, origin=self.origin))

    def _share(self, board_id: str, changed: list[dict[str, Any]], gone: list[str]) -> None:
        events.bus.publish(PRESENCE_TOPIC, PresenceShared(type='presence', origin=self.origin, board_id=board_id,
                                                          changed=changed, gone=gone))

    def _on_event(self, event: PresenceEvent) -> None:
        origin = event['origin']
        if origin == self.origin:
            return
        if event['type'] == 'presence':
            self.presence.apply_remote(origin, event['board_id'], event['changed'], event['gone'])
        elif event['type'] == 'bye':
            self.presence.drop_origin(origin)
        else:
            self.presence.heard(origin)
            if event['type'] == 'hello':
                for board_id, entries in self.presence.local_entries().items():
                    self._share(board_id, entries, [])
