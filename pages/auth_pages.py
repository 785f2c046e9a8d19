"""First-owner setup, login, logout and accepting an invite.

Logging in gives the browser a new session id (session fixation): NiceGUI keys `app.storage.user` by an id in a
signed cookie, which someone could have planted in the victim's browser beforehand. The login handler runs over the
websocket and cannot set a cookie, so it hands over to `/login/complete` with a one-time token: that request empties
the session (NiceGUI's middleware then issues a new id to the next request), and the redirect that follows stores
the user under the new id.
"""
from __future__ import annotations

import asyncio
import secrets
import time
from dataclasses import dataclass

from fastapi import Request
from fastapi.responses import RedirectResponse
from nicegui import app, ui

from agor import auth, logins
from agor.config import Settings
from agor.demo import DEMO_PASSWORD
from agor.errors import DomainError
from agor.models import User

from components.act import FAILED, LOGIN, act_signed_out
from components.busy import busy_button

from .frame import PAGE_BUILD_SECONDS, PRIMARY


def register(settings: Settings) -> None:
    async def login(request: Request, next: str = '/') -> RedirectResponse | None:  # noqa: A002 (query name)
        return await login_page(settings, request, next)

    ui.page('/setup', title='Set up Agor', response_timeout=PAGE_BUILD_SECONDS)(setup_page)
    ui.page('/login', title='Log in · Agor', response_timeout=PAGE_BUILD_SECONDS)(login)
    ui.page('/logout', response_timeout=PAGE_BUILD_SECONDS)(logout_page)
    ui.page('/invite/{token}', title='Join · Agor', response_timeout=PAGE_BUILD_SECONDS)(invite_page)
    app.get('/login/complete')(complete_login)


async def setup_page() -> RedirectResponse | None:
    if await asyncio.to_thread(auth.has_users):
        return RedirectResponse('/login')
    with _panel('Create the owner account', 'This is a new instance. The first account owns it.'):
        name = ui.input('Your name').props('outlined autofocus').classes('w-full')
        email = ui.input('Email').props('outlined type=email').classes('w-full')
        password = ui.input('Password (8+ characters)', password=True).props('outlined').classes('w-full')

        async def create() -> None:
            user = await act_signed_out(auth.create_first_owner, email.value, name.value, password.value)
            if user is not FAILED:
                _log_in(user, '/')
        ui.button('Create owner account', on_click=create).classes('w-full').props('unelevated color=teal-8')
    return None


async def login_page(settings: Settings, request: Request, next: str) -> RedirectResponse | None:  # noqa: A002
    if not await asyncio.to_thread(auth.has_users):
        return RedirectResponse('/setup')
    target = next if next.startswith('/') and not next.startswith(('//', '/\\')) else '/'
    client_ip = request.client.host if request.client else ''
    with _panel('Log in', 'Welcome back.'):
        email = ui.input('Email').props('outlined type=email autofocus').classes('w-full')
        password = ui.input('Password', password=True).props('outlined').classes('w-full')

        async def log_in() -> None:
            user = await act_signed_out(auth.authenticate, email.value, password.value, client_ip)
            if user is not FAILED:
                _log_in(user, target)
        password.on('keydown.enter', log_in)
        ui.button('Log in', on_click=log_in).classes('w-full').props('unelevated color=teal-8')
        if settings.demo:
            ui.separator()
            ui.label('Demo instance: sign in as one of the team').classes('text-sm text-slate-600')
            with ui.row().classes('gap-2 flex-wrap'):
                for user in await asyncio.to_thread(auth.list_users):
                    async def as_demo_user(user: User = user) -> None:
                        email.set_value(user.email)
                        password.set_value(DEMO_PASSWORD)
                        await log_in()
                    ui.button(f'{user.name} ({user.role})', on_click=as_demo_user) \
                        .props('outline no-caps size=sm color=teal-8')
    return None


async def logout_page() -> RedirectResponse:
    """Ends the login on the server: every tab of it closes, and its token is refused from now on."""
    await asyncio.to_thread(logins.end, app.storage.user.get(LOGIN))
    app.storage.user.clear()
    return RedirectResponse('/login')


async def invite_page(token: str) -> None:
    invite = None
    try:
        invite = await asyncio.to_thread(auth.invite_for, token)
    except DomainError as error:
        with _panel('Invite link', error.message):
            ui.link('Go to login', '/login')
        return
    with _panel('Join the team', f'You are invited as {invite.role}.'):
        name = ui.input('Your name').props('outlined autofocus').classes('w-full')
        email = ui.input('Email', value=invite.email or '').props('outlined type=email').classes('w-full')
        password = ui.input('Password (8+ characters)', password=True).props('outlined').classes('w-full')

        async def join() -> None:
            user = await act_signed_out(auth.accept_invite, token, email.value, name.value, password.value)
            if user is not FAILED:
                _log_in(user, '/')
        busy_button('Create my account', join).classes('w-full').props('unelevated color=teal-8')


HANDOFF_SECONDS = 60


@dataclass(frozen=True)
class _Handoff:
    user_id: str
    target: str
    old_id: str  # the browser id the login happened under, which is left behind
    old_login: str | None  # the login token that browser held, which ends (`agor.logins`)
    leaving: bool  # step one (from the old id) or step two (from a new one)
    expires: float


_handoffs: dict[str, _Handoff] = {}


def _log_in(user: User, target: str) -> None:
    token = _hand_off(_Handoff(user.id, target, app.storage.browser['id'], app.storage.user.get(LOGIN), True,
                               time.monotonic() + HANDOFF_SECONDS))
    ui.navigate.to(f'/login/complete?token={token}')


def complete_login(request: Request, token: str = '') -> RedirectResponse:
    """Step one (from the login page's browser, with its old id): empty the session, dropping the id; step two
    (the redirect, which NiceGUI has given a new id): log the user in under it. A token works once, for a minute."""
    handoff = _handoffs.pop(token, None)
    if handoff is None or handoff.expires < time.monotonic() \
            or (request.session.get('id') == handoff.old_id) != handoff.leaving:
        return RedirectResponse('/login', status_code=303)
    if handoff.leaving:
        request.session.clear()
        token = _hand_off(_Handoff(handoff.user_id, handoff.target, handoff.old_id, handoff.old_login, False,
                                   handoff.expires))
        return RedirectResponse(f'/login/complete?token={token}', status_code=303)
    # a new server-side login (`agor.logins`; this sync route runs in a worker thread, off the event loop)
    app.storage.user[LOGIN] = logins.open_login(handoff.user_id, replacing=handoff.old_login)
    return RedirectResponse(handoff.target, status_code=303)


def _hand_off(handoff: _Handoff) -> str:
    now = time.monotonic()
    for stale in [t for t, h in _handoffs.items() if h.expires < now]:
        del _handoffs[stale]
    token = secrets.token_urlsafe(32)
    _handoffs[token] = handoff
    return token


def _panel(title: str, subtitle: str) -> ui.card:
    ui.colors(primary=PRIMARY)
    ui.query('body').classes('bg-slate-100')
    with ui.column().classes('w-full items-center pt-24'):
        ui.label('◆ Agor').classes('text-2xl font-bold text-teal-700')
        card = ui.card().classes('w-96 p-6 gap-3')
        with card:
            ui.label(title).classes('text-xl font-semibold')
            ui.label(subtitle).classes('text-sm text-slate-600')
    return card
