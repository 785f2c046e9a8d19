"""Who is on which board, where their cursor is and what they are doing: ephemeral, never in the database.

Handlers only record the latest state and mark the board dirty, in O(1). A board that has not pushed within its
interval (its tick) is pushed at once (its push is scheduled with no wait); one that has waits for the rest of the
interval, so a board pushes at most once per tick however many people move on it, and an isolated move is never held
back. The tick grows with the board's viewers (`push_interval`): a push goes to every page of the board, so pages times
pushes per second stay near PAGE_PUSHES_PER_SECOND, from 30 ms on a small board to 100 ms at a hundred viewers.
`schedule` is how the pushes get run (components/presence_layer.py sets it to the event loop's call_later), each
marked as the board's tick or not: a tick is whenever its timer fires, since an event loop's timers may fire a few
milliseconds early (uvloop's clock is the one cached at the start of a loop iteration); `take`
gives what changed since the board's last push, field by field, which is all a viewer's browser is sent.

In a cluster (agor.presence_relay) each process keeps the viewers connected to it. A board's paced push is its tick:
`share` is then told what changed among this process's viewers since the last tick (one message per board per tick
at most, whatever the number of moves). What other processes shared comes in through `apply_remote`: those entries
join the board's snapshot as they were sent and are pushed at once, since their process held them back for a tick
already; that extra push shares nothing, so two processes never answer each other's pushes with pushes of their own.
Entries of a process not heard from in ORIGIN_GONE_AFTER seconds are dropped.
"""
from __future__ import annotations

import math
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

from .models import User

IDLE_AFTER = 60.0  # s without input: idle
CURSOR_FADE_AFTER = 5.0  # s without cursor movement: the cursor fades
GONE_AFTER = 10.0  # s without any heartbeat: the viewer is removed (crashed tab, lost network)
PUSH_INTERVAL_MIN, PUSH_INTERVAL_MAX = 0.03, 0.1  # s: a board's tick (in a cluster: plus the relayed pushes)
PAGE_PUSHES_PER_SECOND = 1000  # what a board's tick aims at: its viewers times its pushes per second
ORIGIN_GONE_AFTER = 6.0  # s without a word from another process (it sends one every 2 s): its viewers are removed
COORD_MAX = 1_000_000
LABEL_MAX = 120


@dataclass(slots=True, kw_only=True)
class Viewer:
    conn: str
    board_id: str
    user_id: str
    name: str
    initials: str
    color: str
    avatar: str | None  # an uploaded avatar's URL
    joined_at: float
    joined_epoch: float  # wall-clock time of the join: the order across processes
    seen_at: float
    input_at: float
    moved_at: float = 0.0
    seq: float = -math.inf
    x: float | None = None
    y: float | None = None
    label: str = ''
    drag: dict[str, Any] | None = None
    hidden: bool = False
    viewport: dict[str, float] | None = None
    following: str | None = None


def push_interval(viewers: int) -> float:
    """A board's tick for this many viewers (local and other processes')."""
    return min(PUSH_INTERVAL_MAX, max(PUSH_INTERVAL_MIN, viewers / PAGE_PUSHES_PER_SECOND))


@dataclass(frozen=True, slots=True)
class BoardPush:
    """One board's push: everyone on it now (for the facepile), and what a browser that has the previous push needs."""
    snapshot: tuple[dict[str, Any], ...]
    changed: tuple[dict[str, Any], ...]  # new entries whole; for the others `conn` and the fields that changed
    gone: tuple[str, ...]  # connections that left since then

    def only_about(self) -> str | None:
        """The connection this push is only news of, when it tells that person's own page nothing (a move of theirs):
        a page draws everyone but its own viewer, and reads of its own entry only whom it follows."""
        conns = {entry['conn'] for entry in self.changed}
        if self.gone or len(conns) != 1 or any('following' in entry for entry in self.changed):
            return None
        return conns.pop()


def _not_scheduled(board_id: str, wait: float, tick: bool) -> None:
    """Until a layer sets `Presence.schedule`, pushes are only taken by whoever calls `take`."""


Share = Callable[[str, list[dict[str, Any]], list[str]], None]  # (board id, changed local entries, gone local conns)


@dataclass(slots=True)
class RemoteEntry:
    origin: str  # the process that has this viewer
    entry: dict[str, Any]


@dataclass
class Presence:
    clock: Callable[[], float] = time.monotonic
    wall_clock: Callable[[], float] = time.time  # the join order across processes
    schedule: Callable[[str, float, bool], None] = _not_scheduled  # run take(board, tick) after `wait` seconds
    viewers: dict[str, Viewer] = field(default_factory=dict)
    _dirty: set[str] = field(default_factory=set)
    _scheduled: set[str] = field(default_factory=set)  # boards with a tick to come
    _next_tick: dict[str, float] = field(default_factory=dict)  # board -> when its next tick may be, set at each tick
    _sent: dict[str, dict[str, dict[str, Any]]] = field(default_factory=dict)
    share: Share | None = None  # set in a cluster: told this process's changes at every push
    remote: dict[str, dict[str, RemoteEntry]] = field(default_factory=dict)  # board -> conn -> another process's
    _heard: dict[str, float] = field(default_factory=dict)  # process -> when it last said anything
    _shared: dict[str, dict[str, dict[str, Any]]] = field(default_factory=dict)  # board -> conn -> local entry shared
    _relayed: set[str] = field(default_factory=set)  # boards with a push of other processes' entries asked for

    def join(self, board_id: str, conn: str, user: User) -> None:
        self.leave(conn)
        self.viewers[conn] = self._viewer(board_id, conn, user)
        self._mark(board_id)

    def _viewer(self, board_id: str, conn: str, user: User) -> Viewer:
        now = self.clock()
        return Viewer(conn=conn, board_id=board_id, user_id=user.id, name=user.name, initials=user.initials,
                      color=user.avatar_color, avatar=user.avatar_url, joined_at=now, joined_epoch=self.wall_clock(),
                      seen_at=now, input_at=now)

    def arriving(self, board_id: str, conn: str, user: User) -> list[dict[str, Any]]:
        """The board as a page being built for it will find it: with its own viewer, who joins once the page is
        connected (so a crowd arriving costs each page one facepile, not one before and one after its join)."""
        if conn in self.viewers:
            return self.board_snapshot(board_id)
        return [*self.board_snapshot(board_id), self._entry(self._viewer(board_id, conn, user), self.clock(), set())]

    def leave(self, conn: str) -> None:
        viewer = self.viewers.pop(conn, None)
        if viewer is not None:
            self._mark(viewer.board_id)

    def cursor(self, conn: str, x: Any, y: Any, seq: Any, label: Any = '', drag: Any = None) -> bool:
        """Record a cursor update; stale (out-of-order) or malformed updates are dropped and return False."""
        viewer = self.viewers.get(conn)
        if viewer is None:
            return False
        try:
            x, y, seq = float(x), float(y), float(seq)
        except (TypeError, ValueError):
            return False
        if not all(math.isfinite(v) for v in (x, y, seq)) or abs(x) > COORD_MAX or abs(y) > COORD_MAX:
            return False
        if seq <= viewer.seq:
            return False
        now = self.clock()
        viewer.seq, viewer.x, viewer.y = seq, round(x, 1), round(y, 1)
        viewer.label = label[:LABEL_MAX] if isinstance(label, str) else ''
        viewer.drag = _clean_drag(drag)
        viewer.moved_at = viewer.input_at = viewer.seen_at = now
        viewer.hidden = False
        self._mark(viewer.board_id)
        return True

    def heartbeat(self, conn: str, *, hidden: bool, active: bool) -> None:
        """Sent every few seconds and on visibility changes; `active` when there was input since the last one."""
        viewer = self.viewers.get(conn)
        if viewer is None:
            return
        now = self.clock()
        before = self.state(viewer, now)
        viewer.seen_at = now
        viewer.hidden = bool(hidden)
        if active:
            viewer.input_at = now
        if self.state(viewer, now) != before:
            self._mark(viewer.board_id)

    def set_viewport(self, conn: str, x: Any, y: Any, k: Any) -> None:
        viewer = self.viewers.get(conn)
        try:
            values = {'x': float(x), 'y': float(y), 'k': float(k)}
        except (TypeError, ValueError):
            return
        if viewer is None or not all(math.isfinite(v) for v in values.values()) or not 0.05 <= values['k'] <= 5:
            return
        viewer.viewport = values
        if viewer.conn in self._followed_conns(viewer.board_id):
            self._mark(viewer.board_id)

    def follow(self, conn: str, target_user_id: str | None) -> None:
        viewer = self.viewers.get(conn)
        if viewer is None:
            return
        targets = {v.user_id for v in self.viewers.values() if v.board_id == viewer.board_id}
        targets.update(r.entry['user'] for r in self.remote.get(viewer.board_id, {}).values())
        viewer.following = target_user_id if target_user_id in targets and target_user_id != viewer.user_id else None
        self._mark(viewer.board_id)

    def sweep(self) -> None:
        """Remove viewers not heard from in GONE_AFTER seconds; mark boards whose faces or cursors changed state."""
        now = self.clock()
        for viewer in list(self.viewers.values()):
            if now - viewer.seen_at > GONE_AFTER:
                self.leave(viewer.conn)
            elif _crossed(now, viewer.moved_at, CURSOR_FADE_AFTER) or _crossed(now, viewer.input_at, IDLE_AFTER):
                self._mark(viewer.board_id)
        for origin, heard in list(self._heard.items()):
            if now - heard > ORIGIN_GONE_AFTER:
                self.drop_origin(origin)

    # ---- other processes (agor.presence_relay) ----------------------------------------------------------------------

    def heard(self, origin: str) -> None:
        self._heard[origin] = self.clock()

    def apply_remote(self, origin: str, board_id: str, changed: list[dict[str, Any]], gone: list[str]) -> None:
        """What another process shared of one board: its viewers' new entries, and its connections that left."""
        self.heard(origin)
        entries = self.remote.setdefault(board_id, {})
        for entry in changed:
            entries[entry['conn']] = RemoteEntry(origin, entry)
        for conn in gone:
            entries.pop(conn, None)
        if not entries:
            self.remote.pop(board_id, None)
        self._mark(board_id)  # the next tick shares what this changes of ours (a follower makes a viewport shared)
        if board_id not in self._relayed:  # the other process held these back for a tick already: no second wait
            self._relayed.add(board_id)
            self.schedule(board_id, 0.0, False)

    def drop_origin(self, origin: str) -> None:
        """Another process stopped or went silent: its viewers leave every board."""
        self._heard.pop(origin, None)
        for board_id, entries in list(self.remote.items()):
            mine = [conn for conn, remote in entries.items() if remote.origin == origin]
            for conn in mine:
                del entries[conn]
            if not entries:
                del self.remote[board_id]
            if mine:
                self._mark(board_id)

    def local_entries(self) -> dict[str, list[dict[str, Any]]]:
        """This process's viewers, by board, as shared (for a process that just joined the cluster)."""
        boards = {v.board_id for v in self.viewers.values()}
        return {board_id: [self._with_joined(e) for e in self.board_snapshot(board_id) if e['conn'] in self.viewers]
                for board_id in boards}

    def _with_joined(self, entry: dict[str, Any]) -> dict[str, Any]:
        return {**entry, 'joined': self.viewers[entry['conn']].joined_epoch}

    def take(self, board_id: str, tick: bool) -> BoardPush | None:
        """The board's push, if anything changed since its last one; called when a scheduled push runs. The board's
        tick shares (in a cluster); a push asked for by `apply_remote` (`tick` false) only pushes."""
        now = self.clock()
        if tick:
            self._scheduled.discard(board_id)
        else:
            self._relayed.discard(board_id)
        if board_id not in self._dirty and not (tick and self.share is not None):
            return None
        snapshot = tuple(self.board_snapshot(board_id))
        current = {entry['conn']: entry for entry in snapshot}
        if tick:
            if current:
                self._next_tick[board_id] = now + push_interval(len(current))
            else:
                self._next_tick.pop(board_id, None)
            if self.share is not None:
                self._share_local(self.share, board_id, current)
        if board_id not in self._dirty:
            return None
        self._dirty.discard(board_id)
        before = self._sent.pop(board_id, {})
        if current:
            self._sent[board_id] = current
        changed = tuple(_difference(before.get(entry['conn']), entry) for entry in snapshot
                        if before.get(entry['conn']) != entry)
        gone = tuple(conn for conn in before if conn not in current)
        return BoardPush(snapshot, changed, gone) if changed or gone else None

    def _share_local(self, share: Share, board_id: str, current: dict[str, dict[str, Any]]) -> None:
        """This process's viewers of the board that changed or left since its last tick, in one message."""
        local = {conn: entry for conn, entry in current.items() if conn in self.viewers}
        before = self._shared.pop(board_id, {})
        if local:
            self._shared[board_id] = local
        mine = [self._with_joined(entry) for conn, entry in local.items() if before.get(conn) != entry]
        gone = sorted(before.keys() - local.keys())
        if mine or gone:
            share(board_id, mine, gone)

    def _mark(self, board_id: str) -> None:
        self._dirty.add(board_id)
        if board_id in self._scheduled:
            return
        self._scheduled.add(board_id)
        self.schedule(board_id, max(0.0, self._next_tick.get(board_id, -math.inf) - self.clock()), True)

    def board_snapshot(self, board_id: str) -> list[dict[str, Any]]:
        """Everyone on one board, in join order, in the compact shape the browser draws from."""
        now = self.clock()
        viewers = sorted((v for v in self.viewers.values() if v.board_id == board_id), key=lambda v: v.joined_at)
        followed = self._followed_conns(board_id)
        local = [self._entry(v, now, followed) for v in viewers]
        remote = self.remote.get(board_id)
        if not remote:
            return local
        joined = {v.conn: v.joined_epoch for v in viewers}
        joined.update((conn, r.entry['joined']) for conn, r in remote.items())
        return sorted([*local, *(r.entry for r in remote.values())], key=lambda entry: joined[entry['conn']])

    def _entry(self, v: Viewer, now: float, followed: set[str]) -> dict[str, Any]:
        """A viewer in the compact shape the browser draws from."""
        return {
            'conn': v.conn, 'user': v.user_id, 'name': v.name, 'initials': v.initials, 'color': v.color,
            'avatar': v.avatar, 'state': self.state(v, now), 'x': v.x, 'y': v.y, 'label': v.label, 'drag': v.drag,
            'faded': v.x is None or now - v.moved_at > CURSOR_FADE_AFTER, 'following': v.following,
            'viewport': v.viewport if v.conn in followed else None,
        }

    def state(self, viewer: Viewer, now: float) -> str:
        if viewer.hidden:
            return 'away'
        return 'idle' if now - viewer.input_at > IDLE_AFTER else 'active'

    def _followed_conns(self, board_id: str) -> set[str]:
        followed_users = {v.following for v in self.viewers.values() if v.board_id == board_id and v.following}
        followed_users.update(r.entry['following'] for r in self.remote.get(board_id, {}).values())
        followed_users.discard(None)
        return {v.conn for v in self.viewers.values() if v.board_id == board_id and v.user_id in followed_users}


def _difference(before: dict[str, Any] | None, entry: dict[str, Any]) -> dict[str, Any]:
    """What a browser holding `before` needs to have `entry`: all of it if new, else its conn and changed fields."""
    if before is None:
        return entry
    return {'conn': entry['conn'], **{key: value for key, value in entry.items() if before.get(key) != value}}


def _clean_drag(drag: Any) -> dict[str, Any] | None:
    if not isinstance(drag, dict) or not isinstance(drag.get('id'), str):
        return None
    try:
        x, y = float(drag['x']), float(drag['y'])
    except (KeyError, TypeError, ValueError):
        return None
    if not (math.isfinite(x) and math.isfinite(y)) or max(abs(x), abs(y)) > COORD_MAX:
        return None
    return {'id': drag['id'][:36], 'x': round(x, 1), 'y': round(y, 1)}


def _crossed(now: float, since: float, after: float) -> bool:
    """True during the one sweep (1 s) in which `after` seconds since `since` have just passed."""
    return after < now - since <= after + 1.0


presence = Presence()
