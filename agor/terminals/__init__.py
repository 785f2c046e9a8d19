"""Multiplayer terminals: one shared shell per worktree, one `tmux attach` client on a PTY per browser viewer.

- `tmux`: the tmux layer on libtmux; one tmux server per worktree and Unix account, on a socket only the app reaches.
- `pty`: a viewer's tmux client on a PTY and the pump (flow control) between it and the viewer.
- `access`: who may open, start and type in a terminal, and the environment a shell starts with.
- `service`: the sharing service (attachments, host and guests, read-only, closing the share).

No NiceGUI here (docs/terminals.md). `start` makes the app's service, which main.py passes to the pages; the domain
reaches it only through `rights_changed` and the `worktrees` events it subscribes to.
"""
from __future__ import annotations

import asyncio
from collections.abc import Callable

from .. import events
from ..config import Settings
from .access import mode_warning, terminal_worktree
from .service import Attachment, Person, ShareState, Sink, TerminalService
from .tmux import TerminalUnavailable

__all__ = ['Attachment', 'Person', 'ShareState', 'Sink', 'TerminalService', 'TerminalUnavailable', 'mode_warning',
           'rights_changed', 'start', 'stop', 'terminal_worktree']

_running: TerminalService | None = None
_unsubscribe: list[Callable[[], None]] = []


def start(settings: Settings) -> TerminalService:
    """The app's terminal service (replacing a previous one); it hears archived and deleted worktrees."""
    global _running, _unsubscribe
    stop()
    _running = TerminalService(settings)
    _unsubscribe = [events.bus.subscribe(events.WORKTREES_TOPIC, _running.on_worktree_event),
                    events.bus.subscribe(events.TERMINALS_TOPIC, _on_rights_event)]
    return _running


def stop() -> None:
    """Detach every viewer (the shells live on) and stop hearing events."""
    global _running, _unsubscribe
    for unsubscribe in _unsubscribe:
        unsubscribe()
    _unsubscribe = []
    if _running is not None:
        _running.close_all()
        _running = None


def rights_changed(*worktree_ids: str) -> None:
    """Hook for agor.permissions' callers: a worktree's level or its board's members changed. Published, so that in
    a cluster it reaches the runner process, whose terminals these are, from whichever process made the change."""
    if worktree_ids:
        events.bus.publish(events.TERMINALS_TOPIC, events.TerminalRightsChanged(type='terminal_rights',
                                                                                worktree_ids=list(worktree_ids)))


def _on_rights_event(event: events.TerminalRightsChanged) -> None:
    """The service reads who may do what from the database: off the event loop when heard on it."""
    service = _running
    if service is None:
        return
    try:
        loop: asyncio.AbstractEventLoop | None = asyncio.get_running_loop()
    except RuntimeError:
        loop = None
    for worktree_id in event['worktree_ids']:
        if loop is None:
            service.rights_changed(worktree_id)
        else:
            loop.run_in_executor(None, service.rights_changed, worktree_id)
