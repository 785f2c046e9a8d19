"""Running a service call from a UI handler: off the event loop, with errors turned into notices."""
from __future__ import annotations

import asyncio
import inspect
import logging
from collections.abc import Callable
from typing import Any

from nicegui import ui

from agor.errors import DomainError

log = logging.getLogger('agor.ui')
FAILED = object()


async def act(fn: Callable, *args: Any, success: str | None = None, **kwargs: Any) -> Any:
    """Run a service call in a worker thread (an async one on the loop); a domain error becomes a notice, anything
    else a generic one.

    (asyncio.to_thread rather than run.io_bound: the latter returns None when cancelled, which reads as a result.)
    """
    try:
        if inspect.iscoroutinefunction(fn):
            result = await fn(*args, **kwargs)
        else:
            result = await asyncio.to_thread(fn, *args, **kwargs)
    except DomainError as error:
        ui.notify(error.message, type='warning')
        return FAILED
    except Exception:
        log.exception('service call %s failed', getattr(fn, '__name__', fn))
        ui.notify('Something went wrong on the server; nothing was changed.', type='negative')
        return FAILED
    if success:
        ui.notify(success, type='positive')
    return result
