"""Settings → Agentic Tools → API Keys: the user's model provider keys (Anthropic, OpenAI, Google, or a custom
variable name), encrypted at rest and write-only. A session always uses its creator's key, whoever prompts it; without
one it falls back to the instance's (AGOR_AGENT_ENV_*)."""
from __future__ import annotations

from nicegui import ui

from agor import user_secrets

from ..act import FAILED, act
from .secrets_list import SecretsList, secret_input
from .section import Section


async def build(user_id: str) -> None:
    ui.label('API Keys').classes('text-lg font-semibold')
    ui.label('Your provider keys: the sessions you start use them, whoever prompts them. Keys are encrypted and '
             'never shown again.').classes('text-sm text-slate-500')
    listed = SecretsList(user_secrets.list_keys, user_secrets.set_key, user_secrets.delete_key)
    with ui.row().classes('w-full items-center gap-2 no-wrap').mark('add-key'):
        known = {name: f'{label} ({name})' for name, label in user_secrets.PROVIDER_KEYS.items()}
        name = ui.select(known, value=next(iter(known)), with_input=True, new_value_mode='add-unique',
                         label='Provider or variable name').props('outlined dense').classes('w-72').mark('key-name')
        value = secret_input('Key').mark('key-value')

        async def add() -> None:
            typed, value.value = value.value, ''
            if await act(user_secrets.set_key, (name.value or '').strip(), typed,
                         success=f'{name.value} saved') is not FAILED:
                await listed.refresh()
        ui.button('Save', icon='save', on_click=add).props('unelevated no-caps color=teal').mark('add-key-value')
    await listed.refresh()


SECTION = Section('Agentic Tools', 'api-keys', 'API Keys', build)
