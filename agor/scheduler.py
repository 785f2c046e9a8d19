"""APScheduler jobs, one scheduler per process, started with the app."""
from __future__ import annotations

from collections.abc import Awaitable, Callable

from apscheduler.schedulers.asyncio import AsyncIOScheduler

from . import demo
from .config import Settings

WATCHDOG_SECONDS = 3

_scheduler: AsyncIOScheduler | None = None


def start(settings: Settings, watchdog: Callable[[], Awaitable[None]]) -> AsyncIOScheduler:
    """The demo reset (when configured) and the session workers' watchdog (`SessionWorkers.check`)."""
    global _scheduler
    _scheduler = AsyncIOScheduler()
    if settings.demo and settings.demo_reset_minutes > 0:
        _scheduler.add_job(demo.reset, 'interval', args=[settings], minutes=settings.demo_reset_minutes,
                           id='demo-reset', max_instances=1, coalesce=True)
    _scheduler.add_job(watchdog, 'interval', seconds=WATCHDOG_SECONDS, id='session-watchdog',
                       max_instances=1, coalesce=True)
    _scheduler.start()
    return _scheduler


def stop() -> None:
    global _scheduler
    if _scheduler is not None:
        _scheduler.shutdown(wait=False)
        _scheduler = None
