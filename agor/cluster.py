"""One process or several: chosen once, at start-up, from `Settings.redis_url` (docs/deployment.md).

Without REDIS_URL: the in-process bus, presence in this process, every scheduled job runs here. With it:
`events.bus` becomes the Redis bus (every process hears every event), presence is shared (agor.presence_relay), and
`once(job)` lets one process of the cluster run each tick of a scheduled job (a Redis key set with NX and an expiry).
Agent runs, the session watchdog and terminals live on the process with `Settings.runner` (AGOR_RUNNER, one per
cluster): the others reach its runs through `events.RUNS_TOPIC`, which the services already publish on, and send
browsers to its terminal pages under RUNNER_PREFIX, which the load balancer routes to it (docs/deployment.md).
"""
from __future__ import annotations

import asyncio
import os
import socket
import uuid

import redis

from . import events
from .config import Settings
from .presence import presence
from .presence_relay import PresenceRelay
from .redis_bus import RedisEventBus

ORIGIN = f'{socket.gethostname()}:{os.getpid()}:{uuid.uuid4().hex[:8]}'  # this process, in Redis
JOB_KEY = 'agor:job:'
RUNNER_PREFIX = '/runner'  # in a cluster, the load balancer's path to the runner process (X-Forwarded-Prefix)

_redis: redis.Redis | None = None
_relay: PresenceRelay | None = None
_terminal_prefix = ''


def unreachable(settings: Settings) -> str | None:
    """Why the Redis of REDIS_URL does not answer (never the URL: it may hold a password); None when it does."""
    if not settings.redis_url:
        return None
    try:
        with redis.Redis.from_url(settings.redis_url, socket_connect_timeout=5, socket_timeout=5) as client:
            client.ping()
    except redis.RedisError as error:
        return f'REDIS_URL: no Redis answers there ({type(error).__name__})'
    return None


def start(settings: Settings) -> None:
    """On the event loop, before anything subscribes to the bus: pick the bus and bind it to the loop."""
    global _redis, _relay, _terminal_prefix
    _terminal_prefix = RUNNER_PREFIX if settings.redis_url else ''
    if settings.redis_url:
        events.bus = RedisEventBus(settings.redis_url)
        _redis = redis.Redis.from_url(settings.redis_url, socket_connect_timeout=5)
    events.bus.bind_loop(asyncio.get_running_loop())
    if _redis is not None:
        _relay = PresenceRelay(presence, ORIGIN)
        _relay.start()


def stop() -> None:
    global _redis, _relay
    if _relay is not None:
        _relay.stop()
        _relay = None
    if isinstance(events.bus, RedisEventBus):
        events.bus.close()
        events.bus = events.LocalEventBus()
    if _redis is not None:
        _redis.close()
        _redis = None
    events.bus.bind_loop(None)


def terminal_path(worktree_id: str) -> str:
    """Where a worktree's terminal page is: on this process, or in a cluster on the runner's."""
    return f'{_terminal_prefix}/w/{worktree_id}/terminal'


def once(job: str, seconds: float) -> bool:
    """True when this process runs this tick of `job`: always in one process; in a cluster, for the first process
    to ask in a window of `seconds` (a little less than the job's interval). Blocking: call it off the loop."""
    if _redis is None:
        return True
    return bool(_redis.set(JOB_KEY + job, ORIGIN, nx=True, px=int(seconds * 1000)))
