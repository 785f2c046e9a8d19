"""Big pages take turns with everything else on the event loop: their builds (pages.frame.one_build_at_a_time) and
their start-up reads in worker threads (few_big_reads_at_a_time: the loop would otherwise queue for the GIL)."""
import asyncio
import itertools
import sys
import threading
import time

from agor.config import load_settings
from pages.frame import BIG_READS, few_big_reads_at_a_time, one_build_at_a_time

from .conftest import seed_board
from .test_pages import log_in


async def test_builds_ready_together_run_in_separate_loop_iterations_with_the_rest_between():
    """Sixty viewers opening a big board at once: their reads finish together, and each build must leave the loop to
    requests and timers before the next one starts (the probe stands for them)."""
    order: list[str] = []
    done = asyncio.Event()

    async def build(i: int) -> None:
        async with one_build_at_a_time():
            order.append(f'build {i}')

    async def probe() -> None:
        while not done.is_set():
            order.append('probe')
            await asyncio.sleep(0)

    probing = asyncio.create_task(probe())
    await asyncio.gather(*(build(i) for i in range(5)))
    done.set()
    await probing
    builds = [i for i, step in enumerate(order) if step.startswith('build')]
    assert len(builds) == 5 and all(b - a > 1 for a, b in itertools.pairwise(builds)), order


def counting(read):
    """`read`, counting how many run at once (in worker threads): `counting.most`."""
    lock, running = threading.Lock(), [0]
    counting.most = 0

    def counted(*args):
        with lock:
            running[0] += 1
            counting.most = max(counting.most, running[0])
        try:
            time.sleep(0.05)  # long enough for the others to start, were they let
            return read(*args)
        finally:
            with lock:
                running[0] -= 1
    return counted


async def test_sixty_big_reads_run_a_few_at_a_time():
    read = counting(lambda: None)

    async def open_page() -> None:
        async with few_big_reads_at_a_time():
            await asyncio.to_thread(read)
    await asyncio.gather(*(open_page() for _ in range(60)))
    assert counting.most == BIG_READS == 2


async def test_a_crowd_opening_a_board_reads_it_a_few_pages_at_a_time(create_user, git_repo, monkeypatch):
    crowd = [create_user() for _ in range(6)]
    await crowd[0].open('/')
    module = sys.modules['pages.board_page']  # as the running app has it (the user fixture may import it anew)
    monkeypatch.setattr(module, '_opened', counting(module._opened))
    seeded = await asyncio.to_thread(seed_board, load_settings(), git_repo)
    for user in crowd:
        await log_in(user, 'alice@example.com')
    await asyncio.gather(*(user.open(f'/b/{seeded.board.slug}') for user in crowd))
    await asyncio.gather(*(user.should_see('Sprint') for user in crowd))
    assert counting.most == BIG_READS
