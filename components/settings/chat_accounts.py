"""Settings → Profile → Chat accounts: link your chat account to Agor with a one-time code you post in a gateway
channel (agor.gateway.links), see the accounts linked to you, unlink one."""
from __future__ import annotations

from typing import Any

from nicegui import ui

from agor.gateway import links

from ..act import FAILED, act
from ..listing import refill
from .section import Section, intro


class ChatAccounts:
    def __init__(self) -> None:
        intro('Messages you write in a chat channel connected to Agor run as you once your chat account is linked. '
              'Make a code, then post it (only the code) in the channel: the bot answers in the thread.')
        ui.button('Make a code', icon='link', on_click=self.make_code).props('unelevated color=teal-8 no-caps') \
            .mark('make-link-code')
        self.shown = ui.column().classes('w-full')
        self.listing = ui.column().classes('w-full gap-1').mark('chat-accounts')

    async def make_code(self) -> None:
        made = await act(links.new_code)
        if made is FAILED:
            return
        self.shown.clear()
        with self.shown, ui.card().classes('w-full bg-amber-50').props('flat bordered').mark('link-code'):
            ui.label(f'Post this in the channel within {made["minutes"]} minutes. It works once; anyone who posts it '
                     'first is linked to you, so post it yourself.').classes('text-sm')
            ui.input(value=made['code']).props('outlined dense readonly').classes('w-full font-mono') \
                .mark('link-code-value')

    async def refresh(self) -> None:
        await refill(self.listing, links.linked, self.row, 'No chat account is linked to you.')

    def row(self, account: dict[str, Any]) -> None:
        with ui.row().classes('w-full items-center gap-3 border-b border-slate-100 py-1 text-sm') \
                .mark('chat-account-row'):
            ui.label(f'{account["platform"]} · {account["channel"]}').classes('w-64')
            ui.label(account['external_id']).classes('font-mono')
            ui.space()
            ui.button('Unlink', on_click=lambda: self.unlink(account['id'])).props('flat no-caps color=negative') \
                .mark('unlink-chat-account')

    async def unlink(self, identity_id: str) -> None:
        if await act(links.unlink, identity_id, success='Unlinked: its messages no longer run as you') is not FAILED:
            await self.refresh()


async def build(user_id: str) -> None:
    await ChatAccounts().refresh()


SECTION = Section('Profile', 'chat-accounts', 'Chat accounts', build)
