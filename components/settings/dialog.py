"""The Settings dialog: a left rail of pages grouped 'Profile' / 'Agentic Tools', the chosen page beside it. Opened
from the avatar menu, or on any page by a deep link `?settings=<key>` (an unknown key opens the first page). Pages
are built when chosen, each through `act` as the user logged in now."""
from __future__ import annotations

import inspect

from nicegui import ui

from agor.config import Settings

from . import audio, chat_accounts, env_vars, general, mcp_authorizations, personal_api_keys, provider_keys, runtimes
from .section import Section


def sections(settings: Settings) -> list[Section]:
    """Every page, in rail order (a group's pages follow its first one)."""
    return [
        general.SECTION,
        env_vars.SECTION,
        audio.SECTION,
        personal_api_keys.section(settings),
        mcp_authorizations.section(settings),
        chat_accounts.SECTION,
        provider_keys.SECTION,
        *runtimes.sections(settings),
    ]


class SettingsDialog(ui.dialog):
    def __init__(self, settings: Settings, user_id: str) -> None:
        super().__init__()
        self.props('aria-label=Settings')
        self.user_id = user_id
        self.sections = sections(settings)
        self.items: dict[str, ui.item] = {}
        self.on('hide', self.delete)  # built again when opened again: nothing stays in memory meanwhile
        with self, ui.card().classes('w-[56rem] max-w-full h-[36rem] p-0').mark('settings-dialog'):
            with ui.row().classes('w-full h-full no-wrap gap-0'):
                with ui.element('nav').props('aria-label="Settings pages"') \
                        .classes('w-52 h-full bg-slate-50 border-r border-slate-200 p-2 flex flex-col') \
                        .mark('settings-rail'):
                    ui.label('Settings').classes('text-lg font-semibold px-2 py-2')
                    for group in dict.fromkeys(section.group for section in self.sections):
                        ui.label(group).classes('text-xs uppercase tracking-wide text-slate-600 px-2 pt-3 pb-1') \
                            .props('aria-hidden=true')  # the list below is named by it
                        with ui.list().props(f'dense aria-label="{group}"'):
                            for section in (s for s in self.sections if s.group == group):
                                self.items[section.key] = ui.item(
                                    section.label, on_click=lambda s=section: self.show(s.key)) \
                                    .props('dense clickable').classes('rounded').mark(f'settings-{section.key}')
                with ui.column().classes('flex-1 h-full overflow-auto p-6 gap-3'):
                    with ui.row().classes('w-full items-center'):
                        self.title = ui.label().props('role=heading aria-level=2').classes('text-xl font-semibold') \
                            .mark('settings-title')
                        ui.space()
                        ui.button(icon='close', on_click=self.close) \
                            .props('flat round dense aria-label="Close settings"').tooltip('Close')
                    self.page = ui.column().classes('w-full gap-3')

    async def show(self, key: str | None) -> None:
        """Open the page `key` (an unknown or missing key: the first page)."""
        section = next((s for s in self.sections if s.key == key), self.sections[0])
        for name, item in self.items.items():
            chosen = name == section.key
            item.classes(add='bg-teal-100 text-teal-900' if chosen else '',
                         remove='' if chosen else 'bg-teal-100 text-teal-900')
            item.props('aria-current=page') if chosen else item.props(remove='aria-current')
        self.title.set_text(section.label)
        self.page.clear()
        with self.page:
            built = section.build(self.user_id)
            if inspect.isawaitable(built):
                await built
        self.open()


async def open_settings(settings: Settings, user_id: str, key: str | None = None) -> SettingsDialog:
    dialog = SettingsDialog(settings, user_id)
    await dialog.show(key)
    return dialog
