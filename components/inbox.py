"""The bell in the header: unread badge, the inbox menu, and a desktop notification when the tab is hidden."""
from __future__ import annotations

import json
from typing import Any

from nicegui import background_tasks, ui

from agor import notifications
from agor.events import UserEvent, topic
from agor.models import User

from . import timestamp
from .act import FAILED, act
from .listen import listen

DESKTOP_NOTIFY = '''
if (document.hidden && window.Notification && Notification.permission === "granted") {
  const n = new Notification(%s, {body: %s, tag: %s});
  n.onclick = () => { window.focus(); location.href = %s; };
}'''


class Inbox:
    def __init__(self, user: User) -> None:
        with ui.button(icon='notifications').props('flat round dense color=grey-8 aria-label=Inbox') \
                .mark('inbox') as self.button:
            self.badge = ui.badge('', color='red').props('floating rounded').mark('inbox-badge')
            with ui.menu().props('anchor="bottom right" self="top right"') as self.menu:
                self.entries = ui.column().classes('w-96 max-h-[70vh] overflow-auto gap-0 p-1')
        self.menu.on('before-show', self.render)
        self.button.tooltip('Inbox')
        self._set_count(0)
        listen(self.button, topic('user', user.id), self.on_event)
        background_tasks.create(self._update(), name='inbox count', context=self.button)

    async def on_event(self, event: UserEvent) -> None:
        if event['type'] == 'notification':
            await self._update(event['notification'])
        elif event['type'] == 'inbox_read':
            await self._update()

    async def _update(self, new: dict[str, Any] | None = None) -> None:
        """Re-count the unread entries; a `new` one also shows as a desktop notification (in a hidden tab)."""
        count = await act(notifications.unread_count)
        if count is FAILED:
            return
        self._set_count(count)
        if new is not None:
            ui.run_javascript(DESKTOP_NOTIFY % tuple(map(json.dumps, (new['title'], new['preview'], new['id'],
                                                                       new['link']))))
        if self.menu.value:
            await self.render()

    async def render(self) -> None:
        with self.button:
            entries = await act(notifications.inbox)
        if entries is FAILED:
            return
        self.entries.clear()
        with self.entries:
            with ui.row().classes('w-full items-center px-2 py-1'):
                ui.label('Inbox').classes('font-semibold')
                ui.space()
                ui.button('Desktop alerts', on_click=self.ask_permission).props('flat dense no-caps size=sm')
                ui.button('Mark all read', on_click=self.mark_all_read).props('flat dense no-caps size=sm') \
                    .mark('mark-all-read')
            if not entries:
                ui.label('Nothing yet: mentions, replies and comments on your worktrees land here.') \
                    .classes('text-sm text-slate-600 px-2 py-3')
            for entry in entries:
                with ui.item().props(f'clickable dense href="{entry["link"]}"') \
                        .classes('w-full rounded' + ('' if entry['read'] else ' bg-teal-50')).mark('inbox-entry'):
                    with ui.item_section():
                        ui.item_label(entry['title']).classes('font-medium' if not entry['read'] else '')
                        ui.item_label(entry['preview']).props('caption lines=2')
                        timestamp(entry['created_at']).classes('text-xs text-slate-600')

    def _set_count(self, count: int) -> None:
        self.badge.set_text(str(count) if count < 100 else '99+')
        self.badge.set_visibility(count > 0)

    async def mark_all_read(self) -> None:
        await act(notifications.mark_read)

    @staticmethod
    def ask_permission() -> None:
        ui.run_javascript('if (window.Notification) Notification.requestPermission();')
