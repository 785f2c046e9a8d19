"""What the Env Vars and API Keys pages share: the user's stored secrets as rows (name, scope, when set) with a
masked field to replace a value and a delete button. Values only ever go from the browser to the server: a field
is emptied once its value is stored, and nothing sends a stored value back."""
from __future__ import annotations

from collections.abc import Awaitable, Callable
from typing import Any

from nicegui import ui

from .. import timestamp
from ..act import FAILED, act
from ..listing import refill

MASK = '••••••••'


def secret_input(label: str) -> ui.input:
    """A password field the browser does not offer to remember or fill in."""
    return ui.input(label, password=True, password_toggle_button=True) \
        .props('outlined dense autocomplete=new-password spellcheck=false').classes('flex-1')


class SecretsList:
    """The rows of one kind of secret; `load` lists them (names only), `replace(name, value)` and `remove(name)`
    are the services, each called through `act`. The page awaits `refresh()` once built."""

    def __init__(self, load: Callable, replace: Callable, remove: Callable, *,
                 scope_change: Callable[[str, str], Awaitable[Any]] | None = None) -> None:
        self.load, self.replace, self.remove, self.scope_change = load, replace, remove, scope_change
        self.rows = ui.column().classes('w-full gap-1').mark('secret-rows')

    async def refresh(self) -> None:
        await refill(self.rows, self.load, self._row, 'Nothing stored yet.')

    def _row(self, item: dict[str, Any]) -> None:
        name = item['name']
        with ui.row().classes('w-full items-center gap-2 no-wrap').mark(f'secret-{name}'):
            ui.label(name).classes('font-mono text-sm w-48 truncate')
            if self.scope_change is not None:
                ui.select({'global': 'Global', 'session': 'Session'}, value=item['scope'],
                          on_change=lambda e, name=name: self.scope_change(name, e.value)) \
                    .props('dense outlined options-dense').classes('w-28').mark(f'scope-{name}')
            value = secret_input(f'{MASK} (type to replace)')

            async def save(name: str = name, field: ui.input = value) -> None:
                typed, field.value = field.value, ''
                if await act(self.replace, name, typed, success=f'{name} replaced') is not FAILED:
                    await self.refresh()
            value.on('keydown.enter', save)
            ui.button(icon='save', on_click=save).props('flat round dense').tooltip('Replace the value') \
                .mark(f'replace-{name}')

            async def delete(name: str = name) -> None:
                if await act(self.remove, name, success=f'{name} deleted') is not FAILED:
                    await self.refresh()
            ui.button(icon='delete', on_click=delete).props('flat round dense color=red').tooltip('Delete') \
                .mark(f'delete-{name}')
            with ui.row().classes('text-xs text-slate-500 whitespace-nowrap'):
                timestamp(item['updated_at'])
