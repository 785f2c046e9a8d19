"""The event bus, its topics and the payloads it carries.

Services publish after commit (`agor.db.emit_after_commit`); pages subscribe through `components.listen` and
services through `bus.subscribe`. Every topic name is made by `topic`: per object `board:<id>` (what viewers of a
board see change), `user:<id>` (one person's open tabs), `session:<id>` (a session's transcript), and process-wide
`INSTANCE_TOPIC` (a demo reset; a cluster's Redis is back), `WORKTREES_TOPIC` (`worktree_gone`: its runs and shell
end), `RUNS_TOPIC` (the session workers: a prompt waits, a run must stop), `TERMINALS_TOPIC` (who may use a
worktree's terminal changed) and `PRESENCE_TOPIC` (a cluster's processes share their viewers: agor.presence_relay).
Every payload is one of the typed dicts below, told apart by its `type`; the board canvas sends canvas payloads to
the browser as they are.

The in-process bus is the default. With REDIS_URL, `agor.cluster` makes `bus` an `agor.redis_bus.RedisEventBus`: the
same two methods, and every process delivers every event to its local subscribers. Payloads are therefore plain JSON.
"""
from __future__ import annotations

import asyncio
import logging
import threading
from collections import defaultdict
from collections.abc import Callable
from typing import Any, Literal, Protocol, TypedDict, Union

log = logging.getLogger(__name__)

Scope = Literal['board', 'user', 'session', 'instance', 'worktrees', 'runs', 'presence', 'terminals']
PROCESS_WIDE = ('instance', 'worktrees', 'runs', 'presence', 'terminals')


def topic(scope: Scope, key: str | None = None) -> str:
    """The one place topic names are made: `<scope>:<key>` for one object's viewers, `<scope>` process-wide."""
    if (key is None) != (scope in PROCESS_WIDE) or key == '':
        raise ValueError(f'topic {scope!r} {"takes no key" if scope in PROCESS_WIDE else "needs a key"}')
    return scope if key is None else f'{scope}:{key}'


INSTANCE_TOPIC = topic('instance')
WORKTREES_TOPIC = topic('worktrees')
RUNS_TOPIC = topic('runs')
PRESENCE_TOPIC = topic('presence')
TERMINALS_TOPIC = topic('terminals')


# ---- board:<id> ------------------------------------------------------------------------------------------------------

class CardChanged(TypedDict):
    type: Literal['card']
    card: dict[str, Any]  # agor.canvas.card_view
    by: str


class CardRemoved(TypedDict):
    type: Literal['card_removed']
    id: str
    by: str


class ZoneChanged(TypedDict):
    type: Literal['zone']
    zone: dict[str, Any]  # agor.canvas.zone_view
    by: str


class ZoneDeleted(TypedDict):
    type: Literal['zone_deleted']
    id: str
    by: str


class BoardChanged(TypedDict):
    type: Literal['board']
    board: dict[str, Any]  # agor.canvas.board_view
    by: str


class BoardDeleted(TypedDict):
    type: Literal['board_deleted']
    by: str


class AccessChanged(TypedDict):
    """The board's privacy or members changed: who is no longer on it leaves."""
    type: Literal['access']
    private: bool
    created_by: str
    members: list[str]
    by: str


class CommentsChanged(TypedDict):
    type: Literal['comments']
    thread: str
    by: str


class AttentionChanged(TypedDict):
    """On the board: a session on it changed state. On `user:<id>`: that user acknowledged a session."""
    type: Literal['attention']
    session_id: str


class ZoneFired(TypedDict):
    type: Literal['zone_fired']
    firing_id: str
    by: str
    by_id: str
    worktree: str
    worktree_id: str
    zone: str
    zone_id: str
    session_id: str


CanvasEvent = Union[CardChanged, CardRemoved, ZoneChanged, ZoneDeleted]
BoardEvent = Union[CanvasEvent, BoardChanged, BoardDeleted, AccessChanged, CommentsChanged, AttentionChanged,
                   ZoneFired]


# ---- user:<id> -------------------------------------------------------------------------------------------------------

class RunFinished(TypedDict):
    """A run the user started or follows completed or failed (their chime)."""
    type: Literal['run_finished']
    session_id: str
    turn_id: str
    outcome: str
    seconds: float
    title: str


class NotificationAdded(TypedDict):
    type: Literal['notification']
    notification: dict[str, Any]  # agor.notifications.view


class InboxRead(TypedDict):
    type: Literal['inbox_read']


class AccountChanged(TypedDict):
    """The user's role or active flag changed: their open pages close."""
    type: Literal['account_changed']


class LoggedOut(TypedDict):
    """One login of the user ended: the pages of that login close."""
    type: Literal['logged_out']
    login: str


UserEvent = Union[RunFinished, NotificationAdded, InboxRead, AccountChanged, LoggedOut, AttentionChanged]


# ---- session:<id> ----------------------------------------------------------------------------------------------------

class EntryAdded(TypedDict):
    type: Literal['entry']
    entry: dict[str, Any]  # agor.agent_sessions.entry_view


class EntryAppended(TypedDict):
    """A streamed entry grew by `text`, which goes at offset `at` of its text."""
    type: Literal['append']
    entry_id: int
    at: int
    text: str


class SessionChanged(TypedDict):
    type: Literal['session']
    session: dict[str, Any]  # the session's summary (agor.agent_sessions)


class ApprovalChanged(TypedDict):
    """An approval request of the session's run was made or answered (agor.approvals.view)."""
    type: Literal['approval']
    approval: dict[str, Any]


SessionEvent = Union[EntryAdded, EntryAppended, SessionChanged, ApprovalChanged]


# ---- process-wide ----------------------------------------------------------------------------------------------------

class InstanceReset(TypedDict):
    type: Literal['reset']


class Resync(TypedDict):
    """In a cluster, after a process was cut off from Redis (agor.redis_bus): pages built before `until` (wall clock)
    may have missed events and reload."""
    type: Literal['resync']
    until: float


class WorktreeGone(TypedDict):
    type: Literal['worktree_gone']
    worktree_id: str
    reason: str


class PromptQueued(TypedDict):
    type: Literal['prompt_queued']
    session_id: str


class StopRequested(TypedDict):
    type: Literal['stop']
    session_id: str
    reason: str


RunEvent = Union[PromptQueued, StopRequested]


class TerminalRightsChanged(TypedDict):
    """The worktrees' levels or their boards' members changed: open terminals of them are checked again."""
    type: Literal['terminal_rights']
    worktree_ids: list[str]


class PresenceShared(TypedDict):
    """One process's viewers of one board changed (agor.presence entries, with `joined`) or left (`gone`)."""
    type: Literal['presence']
    origin: str
    board_id: str
    changed: list[dict[str, Any]]
    gone: list[str]


class PresenceSignal(TypedDict):
    """`alive`: a process is up (every few seconds); `hello`: one started (the others share all their viewers);
    `bye`: one stops (its viewers leave)."""
    type: Literal['alive', 'hello', 'bye']
    origin: str


PresenceEvent = Union[PresenceShared, PresenceSignal]
Event = Union[BoardEvent, UserEvent, SessionEvent, InstanceReset, Resync, WorktreeGone, RunEvent,
              TerminalRightsChanged, PresenceEvent]
Callback = Callable[[Any], Any]  # called with the topic's payloads (e.g. BoardEvent for `board:<id>`)


# ---- the bus ---------------------------------------------------------------------------------------------------------

class EventBus(Protocol):
    def publish(self, topic: str, payload: Event) -> None: ...

    def subscribe(self, topic: str, callback: Callback) -> Callable[[], None]: ...

    def bind_loop(self, loop: asyncio.AbstractEventLoop | None) -> None: ...


class LocalEventBus:
    """Delivers on the event loop it is bound to, whichever thread publishes; synchronously when unbound."""

    def __init__(self) -> None:
        self._subscribers: dict[str, list[Callback]] = defaultdict(list)
        self._loop: asyncio.AbstractEventLoop | None = None
        self._loop_thread: int | None = None

    def bind_loop(self, loop: asyncio.AbstractEventLoop | None) -> None:
        self._loop = loop
        self._loop_thread = threading.get_ident() if loop else None

    def publish(self, topic: str, payload: Event) -> None:
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

    def _deliver(self, topic: str, payload: Event) -> None:
        for callback in list(self._subscribers.get(topic, ())):
            try:
                callback(payload)
            except Exception:  # one broken subscriber must not starve the others
                log.exception('event subscriber for %s failed', topic)


bus: EventBus = LocalEventBus()
