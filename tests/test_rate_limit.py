"""agor.rate_limit: a bucket per key, a burst then a steady rate, the wait until the next token, bounded memory."""
from __future__ import annotations

from agor.rate_limit import Buckets


class Clock:
    def __init__(self) -> None:
        self.now = 1000.0

    def __call__(self) -> float:
        return self.now


def test_a_burst_then_one_token_per_period_and_the_wait_in_whole_seconds():
    clock = Clock()
    buckets = Buckets(per_minute=6, clock=clock)  # a token every 10 s, 6 at once
    assert [buckets.take('a') for _ in range(6)] == [0] * 6
    assert buckets.take('a') == 10 and buckets.wait('a') == 10
    assert buckets.take('b') == 0  # each key its own bucket
    clock.now += 4.5
    assert buckets.take('a') == 6  # 5.5 s to go, rounded up
    clock.now += 5.5
    assert buckets.take('a') == 0 and buckets.take('a') == 10
    clock.now += 3600
    assert [buckets.take('a') for _ in range(7)] == [0] * 6 + [10]  # refills to the burst, never beyond


def test_wait_takes_nothing_and_a_custom_burst():
    clock = Clock()
    failures = Buckets(per_minute=3, burst=2, clock=clock)
    assert failures.wait('x') == 0 and failures.wait('x') == 0
    assert failures.take('x') == 0 and failures.take('x') == 0
    assert failures.wait('x') == 20 and failures.take('x') == 20


def test_idle_keys_are_forgotten_when_the_table_is_full():
    clock = Clock()
    buckets = Buckets(per_minute=60, clock=clock, max_keys=3)
    buckets.take('a')
    buckets.take('b')
    clock.now += 2
    buckets.take('c')
    clock.now += 0.1  # a and b have refilled, c not yet
    buckets.take('d')
    assert set(buckets._buckets) == {'c', 'd'}
    busy = Buckets(per_minute=60, clock=clock, max_keys=2)
    busy.take('a')
    clock.now += 0.1
    busy.take('b')
    busy.take('c')  # nobody has refilled: the least recently used goes
    assert set(busy._buckets) == {'b', 'c'}
