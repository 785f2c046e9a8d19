"""What every page shares: who is logged in, the role gate, the header (with the Settings dialog, also opened by
`?settings=<page>` on any page), and running service calls safely."""
from __future__ import annotations

import asyncio
import contextlib
import inspect
import weakref
from collections.abc import AsyncIterator, Awaitable, Callable
from functools import wraps
from typing import Any, Literal
from urllib.parse import quote

from fastapi import Request
from fastapi.responses import RedirectResponse
from nicegui import Client, app, ui

from agor import auth, events, logins
from agor.config import Settings
from agor.events import InstanceReset, Resync, UserEvent, topic
from agor.models import Role, User
from components.act import FAILED, LOGIN, bind_login, close_page
from components.avatar import avatar
from components.busy import busy_button
from components.chime import Chime
from components.inbox import Inbox
from components.listen import listen
from components.settings.dialog import open_settings

PRIMARY = '#0f766e'  # teal 700: white on it and it on white meet WCAG AA (4.5:1)
# How long a page may take to build before NiceGUI gives up and serves its error page (its default is 3 s). A build
# waits for worker threads and the database like every action, so under a burst (ten viewers opening a session at
# once, a long write holding the database) it is served late rather than not at all; 30 s is the database's own
# busy timeout.
PAGE_BUILD_SECONDS = 30.0


_gates: weakref.WeakKeyDictionary[asyncio.AbstractEventLoop, dict[str, asyncio.Semaphore]] = \
    weakref.WeakKeyDictionary()  # per loop (a semaphore binds to one): gate name -> semaphore
BUILD_GAP = 0.05  # s the event loop has for everything else before each long build
BIG_READS = 2  # a big page's start-up reads at once: about the cores; more only queue on the GIL


def _gate(name: str, size: int) -> asyncio.Semaphore:
    gates = _gates.setdefault(asyncio.get_running_loop(), {})
    if name not in gates:
        gates[name] = asyncio.Semaphore(size)
    return gates[name]


@contextlib.asynccontextmanager
async def one_build_at_a_time() -> AsyncIterator[None]:
    """Around a long stretch of building on the event loop (a big board's elements): one such stretch at a time, each
    after BUILD_GAP in which requests, pushes and timers run (one of them may need several loop iterations, so one
    iteration between two builds is not enough). Without it, when sixty viewers open a 200-card board at once their
    reads finish together and the loop ran all their builds back to back: the app did not answer for 8.6 s and the
    session watchdog missed its runs (docs/benchmarks.md)."""
    async with _gate('build', 1):
        await asyncio.sleep(BUILD_GAP)  # the others that were ready with this one queue up behind it meanwhile
        yield


@contextlib.asynccontextmanager
async def few_big_reads_at_a_time() -> AsyncIterator[None]:
    """Around a big page's start-up read (a 200-card board with its comments: Python work in a worker thread). Sixty
    viewers opening a board at once ran sixty such reads in threads at once; on two cores they took no less time
    in all, but the event loop then waited its turn for the GIL behind them, up to a second between two answers
    (docs/benchmarks.md)."""
    async with _gate('big read', BIG_READS):
        yield


def page(path: str, settings: Settings, *, role: Role = Role.viewer, title: str = 'Agor') -> Callable:
    """Register `builder(user, settings, **path and query parameters)` as the page at `path`, for a logged-in user
    with at least `role`. The builder receives that user (as loaded now, off the event loop) to decide what to show;
    its handlers act through `components.act`, which checks the login again on every action. The page closes when its
    login ends or its user's account changes."""
    def decorator(builder: Callable) -> Callable:
        params = [p for name, p in inspect.signature(builder).parameters.items() if name not in ('user', 'settings')]

        @wraps(builder)
        async def wrapper(request: Request, **kwargs: Any) -> Any:
            token = app.storage.user.get(LOGIN)
            visitor = await asyncio.to_thread(_visitor, token)
            if visitor == 'setup':
                return RedirectResponse('/setup')
            if visitor is None:
                target = request.url.path + (f'?{request.url.query}' if request.url.query else '')
                return RedirectResponse(f'/login?next={quote(target, safe="")}')
            login_id, user = visitor
            client = ui.context.client
            bind_login(client, token)
            _close_when_login_ends(client, login_id, user.id)
            _reload_on_instance_reset()
            if not user.has(role):
                header(user, settings)
                with ui.column().classes('p-8'):
                    ui.label('You do not have access to this page').classes('text-xl font-semibold')
                    ui.label(f'It needs the {role.name} role; yours is {user.role}. Ask an admin.')
                return None
            result = builder(user, settings, **kwargs)
            result = await result if inspect.isawaitable(result) else result
            if result is None and 'settings' in request.query_params:  # a deep link to a page of the Settings dialog
                await open_settings(settings, user.id, request.query_params['settings'])
            return result

        wrapper.__signature__ = inspect.Signature(  # type: ignore[attr-defined]
            [inspect.Parameter('request', inspect.Parameter.POSITIONAL_OR_KEYWORD, annotation=Request), *params])
        ui.page(path, title=title, response_timeout=PAGE_BUILD_SECONDS)(wrapper)
        return builder
    return decorator


def _visitor(token: str | None) -> Literal['setup'] | tuple[str, User] | None:
    """'setup' on a new instance, (login id, user) for a live login, else None."""
    if not auth.has_users():
        return 'setup'
    return logins.current(token)


def _close_when_login_ends(client: Client, login_id: str, user_id: str) -> None:
    """Logging out (in any tab), deactivation and a role change close this user's open pages within a second."""
    def on_event(event: UserEvent) -> None:
        if event['type'] == 'account_changed' or (event['type'] == 'logged_out' and event['login'] == login_id):
            close_page(client)
    listen(client.layout, topic('user', user_id), on_event)


def _reload_on_instance_reset() -> None:
    """A demo reset replaces every account and board: open pages start over. So do the pages of a cluster built before
    its Redis came back (agor.redis_bus): they may have missed events meanwhile."""
    client = ui.context.client

    def on_event(event: InstanceReset | Resync) -> None:
        if event['type'] == 'reset' or client.created < event['until']:
            ui.navigate.reload()
    listen(client.layout, events.INSTANCE_TOPIC, on_event)


def dialog_actions(dialog: ui.dialog, label: str, on_click: Callable, *, color: str = 'teal-8') -> None:
    """The Cancel + primary button row every dialog ends with; the primary button is busy while its action runs."""
    with ui.row().classes('w-full justify-end'):
        ui.button('Cancel', on_click=dialog.close).props('flat')
        busy_button(label, on_click).props(f'unelevated color={color}')


def confirm_delete(title: str, explanation: str, delete: Callable[[], Awaitable[Any]],
                   then: Callable[[], Awaitable[Any]]) -> None:
    """A "Delete ...?" dialog: Delete runs `delete` (an `act(...)`); unless it failed, the dialog closes and `then`
    runs (a refresh)."""
    with ui.dialog() as dialog, ui.card():
        ui.label(title).classes('text-lg font-semibold')
        ui.label(explanation)

        async def confirm() -> None:
            if await delete() is not FAILED:
                dialog.close()
                await then()
        dialog_actions(dialog, 'Delete', confirm, color='red')
    dialog.open()


def header(user: User, settings: Settings, *, focused: bool = False) -> None:
    """The top bar. A focused page (a terminal in its own tab) keeps only the way back: no inbox, chime or user menu,
    which the board tab already has; each costs server memory for every open page."""
    ui.colors(primary=PRIMARY)
    with ui.header().classes('items-center gap-4 px-4 py-2 bg-white text-slate-800 border-b border-slate-200'):
        ui.link('◆ Agor', '/').classes('text-lg font-bold text-teal-700 no-underline')
        ui.link('Boards', '/').classes('text-slate-600 no-underline')
        if focused:
            return
        ui.link('Repos', '/repos').classes('text-slate-600 no-underline')
        if user.has(Role.admin):
            ui.link('Admin', '/admin').classes('text-slate-600 no-underline')
        ui.space()
        if settings.demo:
            ui.badge('demo', color='amber-10').props('outline')
        inbox = Inbox(user)
        Chime(user, inbox.button)
        with ui.button().props('flat no-caps').classes('text-slate-700'):
            avatar(user.name, user.initials, user.avatar_color, user.avatar_url, size='28px')
            ui.label(user.name).classes('ml-2')
            with ui.menu():
                ui.menu_item(f'{user.email} · {user.role}').props('disable')
                ui.menu_item('Settings', lambda: open_settings(settings, user.id)).mark('settings-menu')
                ui.menu_item('Log out', lambda: ui.navigate.to('/logout'))

