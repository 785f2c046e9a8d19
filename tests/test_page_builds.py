"""Big page builds take turns with everything else on the event loop (pages.frame.one_build_at_a_time)."""
import asyncio
import itertools

from pages.frame import one_build_at_a_time


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
