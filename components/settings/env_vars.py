"""Settings → Profile → Env Vars: the user's own environment variables, encrypted at rest and write-only. Global
ones reach every session the user creates and their terminals; Session ones only the sessions they opt into (the
session panel's "Variables")."""
from __future__ import annotations

from nicegui import ui

from agor import user_secrets

from ..act import FAILED, act
from .secrets_list import SecretsList, secret_input
from .section import Section


async def build(user_id: str) -> None:
    ui.label('Env Vars').classes('text-lg font-semibold')
    ui.label('Your variables, in the environment of the sessions you start (whoever prompts them) and of the '
             'terminals you open. Values are encrypted and never shown again: replace or delete them.') \
        .classes('text-sm text-slate-500')
    listed = SecretsList(user_secrets.list_env, user_secrets.set_env, user_secrets.delete_env,
                         scope_change=lambda name, scope: act(user_secrets.set_env, name, None, scope,
                                                              success=f'{name}: {scope}'))
    with ui.row().classes('w-full items-center gap-2 no-wrap').mark('add-env'):
        name = ui.input('Name', placeholder='GITHUB_TOKEN').props('outlined dense').classes('w-48').mark('env-name')
        value = secret_input('Value').mark('env-value')
        scope = ui.select({'global': 'Global', 'session': 'Session'}, value='global') \
            .props('dense outlined').classes('w-28').mark('env-scope')

        async def add() -> None:
            typed, value.value = value.value, ''
            if await act(user_secrets.set_env, (name.value or '').strip(), typed, scope.value,
                         success=f'{name.value} saved') is not FAILED:
                name.value = ''
                await listed.refresh()
        ui.button('Add', icon='add', on_click=add).props('unelevated no-caps color=teal').mark('add-env-var')
    ui.label('Names: capital letters, digits and _. Names that would change how programs start (PATH, LD_PRELOAD, '
             'HOME, NODE_OPTIONS, GIT_*, ...) are refused.').classes('text-xs text-slate-500')
    await listed.refresh()


SECTION = Section('Profile', 'env-vars', 'Env Vars', build)
