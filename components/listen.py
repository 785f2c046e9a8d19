"""How a component hears the event bus: for as long as it lives, in its own UI context.

`listen(owner, topic, handler)` is NiceGUI's `Event.subscribe` for `agor.events.bus`: the handler runs inside
`owner` (so the notices, navigation, timers and tasks it starts belong to that page), an async handler becomes a
background task there, and the subscription ends when `owner` is deleted or its client goes. Deleting the component
is how a page stops hearing a board (the board page does so when the board is closed to its viewer).
"""
from __future__ import annotations

from collections.abc import Callable
from typing import Any

from nicegui import background_tasks, helpers, ui

from agor import events


def listen(owner: ui.element, topic: str, handler: Callable[[Any], Any]) -> Callable[[], None]:
    """Call `handler(payload)` for every event on `topic` while `owner` lives. Returns how to stop sooner."""
    client = owner.client
    unsubscribe = events.bus.subscribe(topic, lambda payload: deliver(payload))

    def stop() -> None:
        unsubscribe()
        client.delete_handlers = [h for h in client.delete_handlers if h is not stop]  # a copy: it may be running

    def deliver(payload: Any) -> None:
        if owner.is_deleted or client.is_deleted:
            stop()
            return
        with owner:
            result = handler(payload)
            if helpers.should_await(result):
                background_tasks.create(result, name=f'{topic} handler', context=owner)

    client.on_delete(stop)
    return stop
