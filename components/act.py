"""How UI code reaches the services: off the event loop, as the user this page is logged in as NOW.

`act(fn, ...)` loads the acting user from this connection's login in a worker thread (`agor.logins.acting_user`:
refused once the login ended or the account was deactivated; the role is the one stored now) and calls
`fn(actor, ...)` there too, so no handler keeps a `User` to act with and no handler can forget the check. A domain
error becomes a notice, anything else a generic one; a login that ended closes the page. Page builders that show an
error inline use `as_current_user` (the same path, raising). The login, setup and invite pages, which have no login
yet, use `act_signed_out`.
"""
from __future__ import annotations

import asyncio
import inspect
import logging
from collections.abc import Callable
from typing import Any

from nicegui import Client, background_tasks, ui

from agor import logins
from agor.errors import DomainError, SignedOut

log = logging.getLogger('agor.ui')
SERVER_ERROR = ('Something went wrong on the server; nothing was changed. Try again; if it keeps failing, ask an '
                'admin to look at the server log.')
FAILED = object()
LOGIN = 'agor-login'  # the client's storage key for the login token its page was built with
CLOSING = 'agor-closing'  # set on a client whose page is being closed
RELOAD_ACK_SECONDS = 1.0


def bind_login(client: Client, token: str) -> None:
    """The page acts with the login it was built with, whatever the browser's storage holds later."""
    client.storage[LOGIN] = token


async def as_current_user(fn: Callable, *args: Any, pass_actor: bool = True, **kwargs: Any) -> Any:
    """Call `fn(actor, *args, **kwargs)` (or `fn(*args, **kwargs)` without `pass_actor`, after the same check) as the
    user this page's login belongs to, checked now. DomainError (SignedOut included) propagates."""
    token = ui.context.client.storage.get(LOGIN)
    if inspect.iscoroutinefunction(fn):  # an async service (terminals): the check off the loop, the call on it
        actor = await asyncio.to_thread(logins.acting_user, token)
        return await (fn(actor, *args, **kwargs) if pass_actor else fn(*args, **kwargs))
    return await asyncio.to_thread(_call_as, token, fn, args, kwargs, pass_actor)


async def act(fn: Callable, *args: Any, success: str | None = None, pass_actor: bool = True, **kwargs: Any) -> Any:
    """`as_current_user` for handlers: the result, or FAILED after telling the user why.

    (asyncio.to_thread rather than run.io_bound: the latter returns None when cancelled, which reads as a result.)
    """
    client = ui.context.client
    try:
        result = await as_current_user(fn, *args, pass_actor=pass_actor, **kwargs)
    except SignedOut as error:
        ui.notify(error.message, type='warning')
        close_page(client)
        return FAILED
    except DomainError as error:
        ui.notify(error.message, type='warning')
        return FAILED
    except Exception:
        log.exception('service call %s failed', getattr(fn, '__name__', fn))
        ui.notify(SERVER_ERROR, type='negative')
        return FAILED
    if success:
        ui.notify(success, type='positive')
    return result


async def act_signed_out(fn: Callable, *args: Any, **kwargs: Any) -> Any:
    """For pages of people not logged in (setup, login, invite): off the loop, errors as notices, no actor."""
    try:
        return await asyncio.to_thread(fn, *args, **kwargs)
    except DomainError as error:
        ui.notify(error.message, type='warning')
    except Exception:
        log.exception('service call %s failed', getattr(fn, '__name__', fn))
        ui.notify(SERVER_ERROR, type='negative')
    return FAILED


def close_page(client: Client) -> None:
    """The page's login ended, or its user's account changed: the browser reloads (to the login page, or to what the
    role allows now) and the server drops the page, so nothing more reaches it or comes from it."""
    if client.is_deleted or client.storage.get(CLOSING):
        return
    client.storage[CLOSING] = True
    background_tasks.create(_reload_and_drop(client), name='close page')


async def _reload_and_drop(client: Client) -> None:
    if not client.has_socket_connection:
        # Left to NiceGUI, which deletes it after the reconnect timeout (deleting it here too would race that); if it
        # comes back first, the queued reload runs, and every action is refused meanwhile.
        client.run_javascript('location.reload()')
        return
    try:  # answered just before the reload runs; a tab that does not answer is dropped all the same
        await client.run_javascript('setTimeout(() => location.reload()); true', timeout=RELOAD_ACK_SECONDS)
    except TimeoutError:
        pass
    if not client.is_deleted and client.id in Client.instances:
        client.delete()


def _call_as(token: str | None, fn: Callable, args: tuple, kwargs: dict, pass_actor: bool) -> Any:
    actor = logins.acting_user(token)
    return fn(actor, *args, **kwargs) if pass_actor else fn(*args, **kwargs)
