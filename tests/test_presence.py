from types import SimpleNamespace

import pytest

from agor.presence import (
    CURSOR_FADE_AFTER,
    GONE_AFTER,
    IDLE_AFTER,
    PUSH_INTERVAL_MAX,
    PUSH_INTERVAL_MIN,
    Presence,
)

TICK = PUSH_INTERVAL_MIN  # the tick of a board with a few viewers


class Clock:
    def __init__(self) -> None:
        self.now = 1000.0

    def __call__(self) -> float:
        return self.now


def person(uid: str, name: str):
    return SimpleNamespace(id=uid, name=name, initials=name[:1], avatar_color='#0d9488', avatar_url=None)


class Pushes:
    """Plays the event loop: records each push `Presence.schedule` asks for, runs the due ones on `run_due`. `early`:
    timers fire that much before their time (uvloop's cached clock under load)."""

    def __init__(self, clock: Clock, early: float = 0.0) -> None:
        self.clock, self.early = clock, early
        self.asked: list[tuple[str, float]] = []
        self.due: list[tuple[float, str, bool]] = []

    def __call__(self, board_id: str, wait: float, tick: bool) -> None:
        self.asked.append((board_id, round(wait, 3)))
        self.due.append((self.clock.now + wait - self.early, board_id, tick))

    def run_due(self, hub: Presence) -> dict:
        ready = [(board, tick) for at, board, tick in self.due if at <= self.clock.now]
        self.due = [(at, board, tick) for at, board, tick in self.due if at > self.clock.now]
        pushes: dict = {}
        for board, tick in ready:  # a board may be due twice (a remote change comes at once): its push is the one made
            push = hub.take(board, tick)
            if push is not None or board not in pushes:
                pushes[board] = push
        return pushes


@pytest.fixture
def hub():
    clock = Clock()
    hub = Presence(clock=clock)
    hub.schedule = Pushes(clock)
    hub.join('board-1', 'a1', person('alice', 'Alice'))
    hub.join('board-1', 'b1', person('bob', 'Bob'))
    hub.join('board-2', 'c1', person('carol', 'Carol'))
    hub.schedule.run_due(hub)
    hub.schedule.asked.clear()
    return hub, clock


def by_conn(hub, board):
    return {p['conn']: p for p in hub.board_snapshot(board)}


def test_out_of_order_and_malformed_updates_are_dropped(hub):
    hub, _ = hub
    assert hub.cursor('a1', 10, 20, seq=5, label='hovering auth-fix')
    assert not hub.cursor('a1', 99, 99, seq=4)  # older than what we have
    assert not hub.cursor('a1', 99, 99, seq=5)  # duplicate
    assert not hub.cursor('a1', float('nan'), 1, seq=6)
    assert not hub.cursor('a1', 'left', 1, seq=7)
    assert not hub.cursor('a1', 1e9, 1, seq=8)
    assert not hub.cursor('nobody', 1, 1, seq=9)
    alice = by_conn(hub, 'board-1')['a1']
    assert (alice['x'], alice['y'], alice['label']) == (10, 20, 'hovering auth-fix')


def test_an_isolated_move_is_pushed_at_once_then_at_most_once_per_interval(hub):
    hub, clock = hub
    clock.now += 5  # the board has been quiet
    hub.cursor('a1', 1, 1, seq=1)
    assert hub.schedule.asked == [('board-1', 0)]  # at once
    assert list(hub.schedule.run_due(hub)) == ['board-1']
    clock.now += 0.01
    for seq in range(2, 12):  # a burst within the interval: one push, at the end of the interval
        hub.cursor('a1', seq, seq, seq=seq)
        hub.cursor('b1', seq, seq, seq=seq)
    assert hub.schedule.asked[1:] == [('board-1', round(TICK - 0.01, 3))]
    assert hub.schedule.run_due(hub) == {}
    clock.now += TICK - 0.01
    push = hub.schedule.run_due(hub)['board-1']
    assert {p['conn']: (p['x'], p['y']) for p in push.changed} == {'a1': (11, 11), 'b1': (11, 11)}  # the latest


def test_a_tick_whose_timer_fires_early_still_pushes_and_the_board_keeps_pushing(hub):
    """A loaded event loop fires timers a few ms early: that push is still the board's tick, never a lost one."""
    hub, clock = hub
    hub.schedule.early = 0.005
    clock.now += 5
    hub.cursor('a1', 1, 1, seq=1)
    assert hub.schedule.run_due(hub)['board-1'] is not None  # at once
    for seq in range(2, 6):
        clock.now += 0.01
        hub.cursor('a1', seq, seq, seq=seq)
        clock.now += TICK - 0.01 - 0.005  # the timer's early time
        assert hub.schedule.run_due(hub)['board-1'].changed[0]['x'] == seq


def test_a_push_carries_only_what_changed_and_only_to_its_board(hub):
    hub, clock = hub
    clock.now += 1
    hub.cursor('a1', 1, 1, seq=1)
    push = hub.schedule.run_due(hub)['board-1']
    assert push.changed == ({'conn': 'a1', 'x': 1, 'y': 1, 'faded': False},) and push.gone == ()  # fields, not entries
    assert [p['conn'] for p in push.snapshot] == ['a1', 'b1']  # the facepile still gets everyone
    clock.now += 1
    hub.cursor('a1', 2, 1, seq=3, label='hovering auth-fix')
    assert hub.schedule.run_due(hub)['board-1'].changed == ({'conn': 'a1', 'x': 2, 'label': 'hovering auth-fix'},)
    clock.now += 1
    hub.join('board-1', 'd1', person('dan', 'Dan'))
    assert hub.schedule.run_due(hub)['board-1'].changed == (by_conn(hub, 'board-1')['d1'],)  # someone new: whole
    clock.now += 1
    hub.leave('b1')
    push = hub.schedule.run_due(hub)['board-1']
    assert push.changed == () and push.gone == ('b1',)
    assert {board for board, _ in hub.schedule.asked} == {'board-1'}  # board-2 never pushed
    clock.now += 1
    hub.cursor('a1', 2, 1, seq=4, label='hovering auth-fix')  # the same again: nothing to send
    assert hub.schedule.run_due(hub) == {'board-1': None}


def test_a_push_only_about_one_person_s_move_is_not_news_to_their_own_page(hub):
    """A page draws everyone but its viewer, and reads of its viewer's entry only whom they follow: a push of one
    person's move names them (their page is not sent it); anything more names nobody."""
    hub, clock = hub
    clock.now += 1
    hub.cursor('a1', 1, 1, seq=1, label='dragging auth-fix')
    assert hub.schedule.run_due(hub)['board-1'].only_about() == 'a1'
    clock.now += 1
    hub.cursor('a1', 2, 1, seq=2)
    hub.cursor('b1', 2, 1, seq=1)
    assert hub.schedule.run_due(hub)['board-1'].only_about() is None  # two people moved
    clock.now += 1
    hub.follow('a1', 'bob')
    assert hub.schedule.run_due(hub)['board-1'].only_about() is None  # Alice's page follows Bob from now on
    clock.now += 1
    hub.join('board-1', 'd1', person('dan', 'Dan'))
    assert hub.schedule.run_due(hub)['board-1'].only_about() is None  # Dan's page learns who it is
    clock.now += 1
    hub.cursor('a1', 3, 1, seq=3)
    hub.leave('d1')
    assert hub.schedule.run_due(hub)['board-1'].only_about() is None  # someone left


def test_a_board_s_tick_grows_with_its_viewers_up_to_a_tenth_of_a_second(hub):
    """Every push goes to every page of the board: a crowded board pushes less often, so pages times pushes per second
    stay bounded; a small one pushes every PUSH_INTERVAL_MIN."""
    hub, clock = hub
    waits = {}
    for viewers in (2, 50, 100, 200):
        board = f'crowd-{viewers}'
        for i in range(viewers):
            hub.join(board, f'{board}-{i}', person(f'u{i}', 'U'))
        clock.now += 1
        hub.schedule.run_due(hub)  # the tick that saw them all
        hub.cursor(f'{board}-0', 1, 1, seq=1)
        waits[viewers] = hub.schedule.asked[-1][1]
    assert waits == {2: TICK, 50: 0.05, 100: PUSH_INTERVAL_MAX, 200: PUSH_INTERVAL_MAX}


def test_a_page_being_built_finds_the_board_as_it_will_be_once_its_viewer_joined(hub):
    """So its facepile is built once, with its own face first, not rebuilt when it connects and joins."""
    hub, _ = hub
    dan = person('dan', 'Dan')
    arriving = hub.arriving('board-1', 'd1', dan)
    assert 'd1' not in hub.viewers
    hub.join('board-1', 'd1', dan)
    assert arriving == hub.board_snapshot('board-1') and [p['conn'] for p in arriving] == ['a1', 'b1', 'd1']
    assert hub.arriving('board-1', 'd1', dan) == hub.board_snapshot('board-1')  # a reconnecting page: already there


def test_presence_is_per_board(hub):
    hub, _ = hub
    hub.cursor('c1', 5, 5, seq=1)
    assert [p['name'] for p in hub.board_snapshot('board-1')] == ['Alice', 'Bob']
    assert [p['name'] for p in hub.board_snapshot('board-2')] == ['Carol']
    assert hub.board_snapshot('board-3') == []


def test_cursor_fades_after_5s_and_user_turns_idle_after_60s(hub):
    hub, clock = hub
    hub.cursor('a1', 1, 1, seq=1)
    clock.now += CURSOR_FADE_AFTER + 0.5
    hub.heartbeat('a1', hidden=False, active=False)
    hub.sweep()
    alice = by_conn(hub, 'board-1')['a1']
    assert alice['faded'] and alice['state'] == 'active'
    clock.now += IDLE_AFTER
    hub.heartbeat('a1', hidden=False, active=False)
    assert by_conn(hub, 'board-1')['a1']['state'] == 'idle'
    hub.heartbeat('a1', hidden=False, active=True)
    assert by_conn(hub, 'board-1')['a1']['state'] == 'active'


def test_hidden_tab_is_away(hub):
    hub, _ = hub
    hub.heartbeat('b1', hidden=True, active=False)
    assert by_conn(hub, 'board-1')['b1']['state'] == 'away'
    assert [board for board, _ in hub.schedule.asked] == ['board-1']


def test_leaving_is_immediate_and_silence_removes_within_10s(hub):
    hub, clock = hub
    hub.leave('a1')
    assert list(by_conn(hub, 'board-1')) == ['b1']
    clock.now += GONE_AFTER - 1
    hub.sweep()
    assert list(by_conn(hub, 'board-1')) == ['b1']
    clock.now += 2
    hub.sweep()
    assert by_conn(hub, 'board-1') == {}


def test_live_drag_is_shared_and_cleaned(hub):
    hub, _ = hub
    hub.cursor('a1', 5, 5, seq=1, label='dragging auth-fix → Review', drag={'id': 'card-1', 'x': 40, 'y': 50})
    assert by_conn(hub, 'board-1')['a1']['drag'] == {'id': 'card-1', 'x': 40, 'y': 50}
    hub.cursor('a1', 5, 5, seq=2, drag={'id': 'card-1', 'x': 'evil'})
    assert by_conn(hub, 'board-1')['a1']['drag'] is None


def test_follow_only_someone_on_the_same_board_and_share_only_their_viewport(hub):
    hub, _ = hub
    hub.set_viewport('a1', 100, 200, 1.5)
    hub.set_viewport('b1', 0, 0, 1)
    hub.follow('b1', 'carol')  # on another board: refused
    assert by_conn(hub, 'board-1')['b1']['following'] is None
    hub.follow('b1', 'alice')
    snapshot = by_conn(hub, 'board-1')
    assert snapshot['b1']['following'] == 'alice'
    assert snapshot['a1']['viewport'] == {'x': 100, 'y': 200, 'k': 1.5}
    assert snapshot['b1']['viewport'] is None  # nobody follows Bob: his viewport stays private
    hub.follow('b1', None)
    assert by_conn(hub, 'board-1')['a1']['viewport'] is None


# ---- two processes of a cluster (agor.presence_relay wires `share` to the other's `apply_remote` over Redis) -------

def two_processes():
    """Process 1 and 2 on one clock, each sharing its pushes straight with the other (what the relay does)."""
    clock = Clock()
    one, two = Presence(clock=clock, wall_clock=clock), Presence(clock=clock, wall_clock=clock)
    for hub, other, origin in ((one, two, 'p1'), (two, one, 'p2')):
        hub.schedule = Pushes(clock)
        hub.share = lambda board, changed, gone, other=other, origin=origin: other.apply_remote(
            origin, board, changed, gone)
    return one, two, clock


def settle(*hubs: Presence) -> None:
    for _ in range(3):  # a push shares, the share marks the other board: run until quiet
        hubs[0].clock.now += TICK
        for hub in hubs:
            hub.schedule.run_due(hub)


def test_a_viewer_on_one_process_is_seen_with_their_cursor_on_the_other():
    one, two, clock = two_processes()
    one.join('board-1', 'a1', person('alice', 'Alice'))
    clock.now += 0.001
    two.join('board-1', 'b1', person('bob', 'Bob'))
    settle(one, two)
    assert [p['conn'] for p in two.board_snapshot('board-1')] == ['a1', 'b1']  # join order across processes
    assert [p['conn'] for p in one.board_snapshot('board-1')] == ['a1', 'b1']
    one.cursor('a1', 12, 34, seq=1)
    clock.now += TICK
    two.cursor('b1', 5, 5, seq=1)
    two.schedule.run_due(two)  # process 2 has just pushed too
    pushed = one.schedule.run_due(one)['board-1']
    assert {p['conn'] for p in pushed.changed} == {'a1', 'b1'}  # Bob's move came from process 2 meanwhile
    seen = two.schedule.run_due(two)['board-1']  # at once: process 1 held the move back already
    assert [(p['conn'], p['x'], p['y']) for p in seen.changed] == [('a1', 12, 34)]
    one.leave('a1')
    settle(one, two)
    assert [p['conn'] for p in two.board_snapshot('board-1')] == ['b1']


def test_following_someone_on_the_other_process_shares_their_viewport():
    one, two, clock = two_processes()
    one.join('board-1', 'a1', person('alice', 'Alice'))
    two.join('board-1', 'b1', person('bob', 'Bob'))
    settle(one, two)
    one.set_viewport('a1', 10, 20, 1.5)
    two.follow('b1', 'alice')
    clock.now += TICK
    settle(one, two)
    assert by_conn(two, 'board-1')['a1']['viewport'] == {'x': 10, 'y': 20, 'k': 1.5}
    assert by_conn(one, 'board-1')['b1']['following'] == 'alice'


def test_a_silent_process_s_viewers_leave_and_a_stopping_one_s_at_once():
    one, two, clock = two_processes()
    one.join('board-1', 'a1', person('alice', 'Alice'))
    two.join('board-1', 'b1', person('bob', 'Bob'))
    settle(one, two)
    for _ in range(3):  # process 1 keeps saying `alive`; Alice, idle, is in none of its pushes all this time
        clock.now += 4.0
        two.heard('p1')
        two.heartbeat('b1', hidden=False, active=False)
        two.sweep()
    settle(two)
    assert 'a1' in by_conn(two, 'board-1')
    clock.now += 6.5  # process 1 died: nothing from it for more than ORIGIN_GONE_AFTER
    two.heartbeat('b1', hidden=False, active=False)
    two.sweep()
    clock.now += TICK
    assert two.schedule.run_due(two)['board-1'].gone == ('a1',)
    assert list(by_conn(two, 'board-1')) == ['b1']
    one.cursor('a1', 1, 1, seq=1)  # process 1 speaks again (as after its `hello`): Alice is back
    settle(one, two)
    assert set(by_conn(two, 'board-1')) == {'a1', 'b1'}
    two.drop_origin('p1')  # process 1's `bye`
    clock.now += TICK
    assert two.schedule.run_due(two)['board-1'].gone == ('a1',)


async def test_a_process_that_starts_later_hears_who_is_already_there(monkeypatch):
    """The relays of two processes on one bus (what Redis is to them): process 2's `hello` makes process 1 share its
    viewers, which have not changed for a while; process 1's `bye` takes them away again."""
    from agor import events
    from agor.presence_relay import PresenceRelay
    monkeypatch.setattr(events, 'bus', events.LocalEventBus())  # unbound: delivers at once
    clock = Clock()
    one, two = Presence(clock=clock, wall_clock=clock), Presence(clock=clock, wall_clock=clock)
    one.schedule, two.schedule = Pushes(clock), Pushes(clock)
    first = PresenceRelay(one, 'p1')
    first.start()
    one.join('board-1', 'a1', person('alice', 'Alice'))
    one.cursor('a1', 7, 8, seq=1)
    settle(one)
    second = PresenceRelay(two, 'p2')
    second.start()  # hello
    settle(two)
    assert [(p['conn'], p['x']) for p in two.board_snapshot('board-1')] == [('a1', 7)]
    first.stop()  # bye
    settle(two)
    assert two.board_snapshot('board-1') == []
    second.stop()


def test_moving_on_both_processes_shares_once_per_tick_and_relays_without_a_second_wait():
    """Everyone moves all the time on two processes whose shares take 2 ms to arrive (Redis). Each process shares at
    most once per tick; a relayed change is pushed when it arrives (the sender held it back for a tick already), so a
    move reaches the other process's viewers within a tick and the hop; and nothing answers a push with a push."""
    clock = Clock()
    one, two = Presence(clock=clock, wall_clock=clock), Presence(clock=clock, wall_clock=clock)
    in_flight: list[tuple[float, Presence, str, tuple]] = []
    shares = {'p1': 0, 'p2': 0}
    for hub, other, origin in ((one, two, 'p1'), (two, one, 'p2')):
        hub.schedule = Pushes(clock)

        def share(board, changed, gone, other=other, origin=origin):
            shares[origin] += 1
            in_flight.append((clock.now + 0.002, other, origin, (board, changed, gone)))
        hub.share = share
    for i in range(4):
        one.join('board-1', f'a{i}', person(f'alice{i}', 'Alice'))
        two.join('board-1', f'b{i}', person(f'bob{i}', 'Bob'))
    moved_at: dict[str, list[tuple[float, float]]] = {}  # conn -> (x, when) of its moves not seen yet
    seen_after: list[float] = []
    pushes = {'p1': 0, 'p2': 0}

    def run_until_quiet() -> None:
        for _ in range(10):
            for at, other, origin, args in [f for f in in_flight if f[0] <= clock.now]:
                in_flight.remove((at, other, origin, args))
                other.apply_remote(origin, *args)
            for hub, origin, others in ((one, 'p1', 'b'), (two, 'p2', 'a')):
                push = hub.schedule.run_due(hub).get('board-1')
                if push is None:
                    continue
                pushes[origin] += 1
                for p in push.changed:  # a move is seen once it or a later one is shown
                    if p['conn'].startswith(others) and p.get('x') is not None:
                        waiting = moved_at.get(p['conn'], [])
                        seen_after.extend(clock.now - at for x, at in waiting if x <= p['x'])
                        moved_at[p['conn']] = [(x, at) for x, at in waiting if x > p['x']]

    run_until_quiet()
    start, steps = clock.now, 1000
    for step in range(1, steps + 1):  # 1 s in 1 ms steps; each viewer moves every 8 ms
        clock.now = start + step * 0.001
        hub, conn = ((one, f'a{step % 4}') if step % 2 else (two, f'b{step % 4}'))
        hub.cursor(conn, step, 0, seq=step)
        moved_at.setdefault(conn, []).append((step, clock.now))
        run_until_quiet()
    ticks = steps * 0.001 / TICK
    assert max(shares.values()) <= ticks + 2  # one message per board per tick, not one per move or per push
    assert max(pushes.values()) <= 2 * ticks + 2  # its own ticks and the other's relayed ones
    assert len(seen_after) > 900 and max(seen_after) <= TICK + 0.002 + 0.001
