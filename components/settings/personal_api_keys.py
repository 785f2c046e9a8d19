"""Settings → Profile → Personal API Keys: make a key for scripts (the HTTP API as yourself), see it once, revoke it.

A new key reaches the browser once, in the box that shows it; closing the box deletes that element, so no later
message or page carries it again (the server keeps only its HMAC: agor.api_keys)."""
from __future__ import annotations

from datetime import datetime
from functools import partial
from typing import Any

from nicegui import ui

from agor import api_keys
from agor.config import Settings

from .. import timestamp
from ..act import FAILED, act
from ..listing import refill
from .section import Section, intro

EXPIRY = {0: 'Never', **{days: f'In {days} days' for days in api_keys.EXPIRY_DAYS}}


def when(moment: datetime | None, never: str) -> None:
    if moment is None:
        ui.label(never)
    else:
        timestamp(moment)


class PersonalApiKeys:
    def __init__(self, settings: Settings) -> None:
        self.settings = settings
        intro('A key lets a script use the Agor API as you (send it as "Authorization: Bearer <key>"). It can do '
              'whatever you can; anyone who has it can too.')
        with ui.row().classes('items-end gap-2'):
            self.name = ui.input('Name', placeholder='e.g. release script').props('outlined dense maxlength=80') \
                .classes('w-64').mark('api-key-name')
            self.expiry = ui.select(EXPIRY, value=90, label='Expires').props('outlined dense').classes('w-40') \
                .mark('api-key-expiry')
            ui.button('Create key', icon='key', on_click=self.create).props('unelevated color=teal-8 no-caps') \
                .mark('create-api-key')
        self.shown = ui.column().classes('w-full')
        self.listing = ui.column().classes('w-full gap-1').mark('api-keys')

    async def create(self) -> None:
        made = await act(partial(api_keys.create, self.settings), self.name.value, self.expiry.value or None)
        if made is FAILED:
            return
        _, token = made
        self.name.set_value('')
        self.show_once(token)
        await self.refresh()

    def show_once(self, token: str) -> None:
        self.shown.clear()
        with self.shown, ui.card().classes('w-full bg-amber-50').props('flat bordered').mark('new-api-key') as box:
            ui.label('Copy your new key now: it is shown only this once.').classes('font-semibold')
            field = ui.input(value=token).props('outlined dense readonly').classes('w-full font-mono') \
                .mark('new-api-key-value')
            with ui.row():
                ui.button('Copy', icon='content_copy', on_click=lambda: ui.run_javascript(  # from the page, not sent
                    f'navigator.clipboard.writeText(document.querySelector("#c{field.id} input").value)')) \
                    .props('flat no-caps')
                ui.button('Done', on_click=box.delete).props('unelevated color=teal-8 no-caps').mark('api-key-done')

    async def refresh(self) -> None:
        await refill(self.listing, api_keys.list_keys, self.row, 'No keys yet.')

    def row(self, key: dict[str, Any]) -> None:
        with ui.row().classes('w-full items-center gap-3 border-b border-slate-100 py-1 text-sm').mark('api-key-row'):
            with ui.column().classes('gap-0 w-48'):
                ui.label(key['name']).classes('font-semibold')
                ui.label(f'{key["prefix"]}_…').classes('font-mono text-xs text-slate-600')
            with ui.column().classes('gap-0 text-xs text-slate-600'):
                with ui.row().classes('gap-1'):
                    ui.label('created')
                    timestamp(key['created_at'])
                with ui.row().classes('gap-1'):
                    ui.label('last used')
                    when(key['last_used_at'], 'never')
                expires = key['expires_at']
                ui.label(f'expires {expires:%Y-%m-%d %H:%M} UTC' if expires else 'never expires')
            ui.space()
            if key['state'] == 'active':
                ui.button('Revoke', on_click=lambda k=key: self.revoke(k['id'])).props('flat no-caps color=negative') \
                    .mark('revoke-api-key')
            else:
                ui.badge(key['state'], color='grey-8')

    async def revoke(self, key_id: str) -> None:
        if await act(api_keys.revoke, key_id, success='Key revoked: it no longer works') is not FAILED:
            await self.refresh()


def section(settings: Settings) -> Section:
    async def build(user_id: str) -> None:
        await PersonalApiKeys(settings).refresh()
    return Section(group='Profile', key='personal-api-keys', label='Personal API Keys', build=build)
