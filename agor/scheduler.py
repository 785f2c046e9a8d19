"""APScheduler jobs, one scheduler per process, started with the app; in a cluster each tick runs in one process
(`agor.cluster.once`)."""
from __future__ import annotations

import asyncio
from collections.abc import Awaitable, Callable

from apscheduler.schedulers.asyncio import AsyncIOScheduler

from . import cluster, demo
from .config import Settings

WATCHDOG_SECONDS = 3
TICK_MARGIN = 0.5  # s: a tick's cluster lock expires this long before the next tick

_scheduler: AsyncIOScheduler | None = None


def start(settings: Settings, watchdog: Callable[[], Awaitable[None]]) -> AsyncIOScheduler:
    """The demo reset (when configured) and, on the runner, the session workers' watchdog (`SessionWorkers.check`)."""
    global _scheduler
    _scheduler = AsyncIOScheduler()
    if settings.demo and settings.demo_reset_minutes > 0:
        seconds = settings.demo_reset_minutes * 60
        _scheduler.add_job(_once('demo-reset', seconds, lambda: asyncio.to_thread(demo.reset, settings)),
                           'interval', seconds=seconds, id='demo-reset', max_instances=1, coalesce=True)
    if settings.runner:
        _scheduler.add_job(_once('session-watchdog', WATCHDOG_SECONDS, watchdog), 'interval',
                           seconds=WATCHDOG_SECONDS, id='session-watchdog', max_instances=1, coalesce=True)
    _scheduler.start()
    return _scheduler


def _once(job: str, interval: float, run: Callable[[], Awaitable[None]]) -> Callable[[], Awaitable[None]]:
    async def tick() -> None:
        if await asyncio.to_thread(cluster.once, job, interval - TICK_MARGIN):
            await run()
    return tick


def stop() -> None:
    global _scheduler
    if _scheduler is not None:
        _scheduler.shutdown(wait=False)
        _scheduler = None
