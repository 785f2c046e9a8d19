"""Settings → Agentic Tools → one page per agent CLI: the user's defaults for the sessions they create (model,
permission mode, extra arguments) and the CLI's state for them (installed and version, provider key, own login)."""
from __future__ import annotations

from functools import partial

from nicegui import ui

from agor import runtime_settings
from agor.config import Settings
from agor.runtimes import registry
from agor.runtimes.base import PERMISSION_LABELS

from ..act import FAILED, act
from .section import Section


def state(cli: dict) -> None:
    with ui.column().classes('gap-1 text-sm').mark('cli-state'):
        if cli['installed']:
            ui.label(f'✓ Installed: {cli["version"] or "version unknown"}')
        else:
            ui.label(f'✗ Not installed on the server. An admin installs it with: {cli["install"]}') \
                .classes('text-amber-700')
        if cli['own_key']:
            ui.label(f'✓ Provider key: yours ({cli["own_key"]}), encrypted; your sessions use it')
        elif cli['instance_key']:
            ui.label(f'✓ Provider key: the instance provides {cli["instance_key"]} to every agent')
        else:
            ui.label('✗ No provider key from the instance: add yours under Agentic Tools → API Keys') \
                .classes('text-amber-700')
        if cli['cli_login']:
            ui.label('✓ Logged in through the CLI\'s own login, kept in your agent home')


async def build(settings: Settings, runtime: str, user_id: str) -> None:
    current = await act(runtime_settings.get, runtime)
    if current is FAILED:
        return
    adapter = registry.get(runtime)
    with ui.row().classes('items-center gap-2 text-sm') as cli_box:  # the CLI's state once its check answers
        ui.spinner(size='1em', color='teal-8')
        ui.label(f'Checking the {adapter.label} CLI…').classes('text-slate-600')

    async def show_state() -> None:
        cli = await act(partial(runtime_settings.cli_state, settings), runtime)
        if cli is not FAILED and not cli_box.is_deleted:
            cli_box.clear()
            with cli_box:
                state(cli)
    ui.timer(0.01, show_state, once=True)
    ui.label('Defaults for the sessions you create with it (a new session can still choose others).') \
        .classes('text-sm text-slate-600 mt-2')
    model = ui.input('Default model', value=current['model'] or '', placeholder="the CLI's default",
                     autocomplete=current['models']).props('outlined clearable').classes('w-96').mark('default-model')
    modes = {name: PERMISSION_LABELS.get(name, name) + (' (default)' if name == current['default_mode'] else '')
             for name in current['modes']}
    mode = ui.select(modes, value=current['permission_mode'], label='Permission mode').props('outlined') \
        .classes('w-96').mark('default-permission-mode')
    mode_help = ui.label().classes('text-xs text-slate-600 -mt-2')
    mode.on_value_change(lambda: mode_help.set_text(adapter.mode_help(mode.value)))
    mode_help.set_text(adapter.mode_help(mode.value))
    extra = ui.input('Extra arguments', value=current['extra_args'], placeholder='e.g. --max-turns 20') \
        .props('outlined').classes('w-96').mark('extra-args')
    ui.label('Added to every run, quoted as in a shell. Flags that change the working directory, the config or the '
             'credentials, and those Agor sets itself, are refused.').classes('text-xs text-slate-600 -mt-2 w-96')

    async def save() -> None:
        saved = await act(runtime_settings.save, runtime, model=model.value, permission_mode=mode.value,
                          extra_args=extra.value, success=f'{adapter.label} defaults saved')
        if saved is not FAILED:
            extra.set_value(saved['extra_args'])
    ui.button('Save', on_click=save).props('unelevated color=teal-8').mark('save-runtime')


def sections(settings: Settings) -> list[Section]:
    return [Section(group='Agentic Tools', key=name, label=registry.get(name).label,
                    build=partial(build, settings, name)) for name in runtime_settings.AGENT_RUNTIMES]
