"""First-owner setup, login, logout and accepting an invite."""
from __future__ import annotations

import asyncio

from fastapi import Request
from fastapi.responses import RedirectResponse
from nicegui import app, ui

from agor import auth, logins
from agor.demo import DEMO_PASSWORD
from agor.errors import DomainError
from agor.models import User

from components.act import FAILED, LOGIN, act_signed_out

from .frame import PRIMARY, settings


def register() -> None:
    ui.page('/setup', title='Set up Agor')(setup_page)
    ui.page('/login', title='Log in · Agor')(login_page)
    ui.page('/logout')(logout_page)
    ui.page('/invite/{token}', title='Join · Agor')(invite_page)


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
                await _log_in(user, '/')
        ui.button('Create owner account', on_click=create).classes('w-full').props('unelevated color=teal')
    return None


async def login_page(request: Request, next: str = '/') -> RedirectResponse | None:  # noqa: A002 (query name)
    if not await asyncio.to_thread(auth.has_users):
        return RedirectResponse('/setup')
    target = next if next.startswith('/') and not next.startswith('//') else '/'
    client_ip = request.client.host if request.client else ''
    with _panel('Log in', 'Welcome back.'):
        email = ui.input('Email').props('outlined type=email autofocus').classes('w-full')
        password = ui.input('Password', password=True).props('outlined').classes('w-full')

        async def log_in() -> None:
            user = await act_signed_out(auth.authenticate, email.value, password.value, client_ip)
            if user is not FAILED:
                await _log_in(user, target)
        password.on('keydown.enter', log_in)
        ui.button('Log in', on_click=log_in).classes('w-full').props('unelevated color=teal')
        if settings().demo:
            ui.separator()
            ui.label('Demo instance: sign in as one of the team').classes('text-sm text-slate-500')
            with ui.row().classes('gap-2 flex-wrap'):
                for user in await asyncio.to_thread(auth.list_users):
                    ui.button(f'{user.name} ({user.role})',
                              on_click=lambda u=user: (email.set_value(u.email), password.set_value(DEMO_PASSWORD),
                                                       log_in())) \
                        .props('outline no-caps size=sm color=teal')
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
                await _log_in(user, '/')
        ui.button('Create my account', on_click=join).classes('w-full').props('unelevated color=teal')


async def _log_in(user: User, target: str) -> None:
    """A new server-side login (`agor.logins`) whose token this browser's storage keeps."""
    token = await act_signed_out(logins.open_login, user.id, replacing=app.storage.user.get(LOGIN))
    if token is FAILED:
        return
    app.storage.user.clear()
    app.storage.user[LOGIN] = token
    ui.navigate.to(target)


def _panel(title: str, subtitle: str) -> ui.card:
    ui.colors(primary=PRIMARY)
    ui.query('body').classes('bg-slate-100')
    with ui.column().classes('w-full items-center pt-24'):
        ui.label('◆ Agor').classes('text-2xl font-bold text-teal-700')
        card = ui.card().classes('w-96 p-6 gap-3')
        with card:
            ui.label(title).classes('text-xl font-semibold')
            ui.label(subtitle).classes('text-sm text-slate-500')
    return card
