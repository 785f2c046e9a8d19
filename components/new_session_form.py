"""The form that starts an agent session in a worktree (a tab of the side panel): agent, permission mode, model and
first prompt, filled in with the user's defaults (Settings → Agentic Tools). Once the session starts, it takes the
form's tab (`components.session_panel`)."""
from __future__ import annotations

from collections.abc import Awaitable, Callable
from typing import Any

from nicegui import ui

from agor import agent_sessions, runtime_settings
from agor.runtimes import registry
from agor.runtimes.base import PERMISSION_LABELS

from . import session_mcp
from .act import FAILED, act
from .busy import busy_button


class NewSessionForm:
    """The form in its tab: a header with the worktree's name and a close button, then the fields."""

    def __init__(self, worktree: dict[str, Any], *, on_created: Callable[[str], Awaitable[None]],
                 on_close: Callable[[], None]) -> None:
        self.worktree = worktree
        self.on_created = on_created
        with ui.column().classes('w-full h-full p-0 gap-0 no-wrap').mark('session-panel'):
            with ui.row().classes('w-full items-center gap-2 px-4 py-3 border-b no-wrap'):
                ui.label(f'New session in {worktree["name"]}').classes('text-lg font-semibold truncate flex-1') \
                    .mark('session-title')
                ui.button(icon='close', on_click=on_close) \
                    .props('flat round dense aria-label="Close this form"').tooltip('Close').mark('close-session')
            self.fields = ui.column().classes('w-full flex-1 overflow-auto gap-2 px-4 py-3 no-wrap')

    async def load(self) -> bool:
        """Draw the fields with the user's defaults; False if they could not be read."""
        mine = await act(runtime_settings.form_defaults)
        if mine is FAILED:
            return False
        offered = await session_mcp.choices()
        with self.fields:
            runtime = ui.select({name: r.label for name, r in registry.RUNTIMES.items()}, value='claude-code'
                                if 'claude-code' in registry.RUNTIMES else next(iter(registry.RUNTIMES)),
                                label='Agent').props('outlined').classes('w-full').mark('runtime')
            mode = ui.select({}, label='Permissions').props('outlined').classes('w-full').mark('permission-mode')
            mode_help = ui.label().classes('agor-permission-help text-xs text-slate-600 -mt-1') \
                .mark('permission-help')
            unattended = ui.label().classes('text-xs text-slate-600').mark('unattended')  # Runtime.unattended
            model = ui.input('Model', placeholder="the CLI's default").props('outlined clearable') \
                .classes('w-full').mark('model')  # a known name from the list, or any other name as typed
            with model.add_slot('append'):
                with ui.button(icon='arrow_drop_down').props('flat round dense aria-label="Known models"') as pick:
                    known = ui.menu().classes('agor-models')
            prompt = ui.textarea('Prompt').props('outlined autogrow').classes('w-full').mark('first-prompt')
            servers = session_mcp.picker(offered)
            ui.label('The session runs as you: with your environment and keys, in the worktree directory.') \
                .classes('text-xs text-slate-600')

            def explain_mode() -> None:
                mode_help.set_text(registry.get(runtime.value).mode_help(mode.value))

            def runtime_chosen() -> None:
                adapter = registry.get(runtime.value)
                default, chosen = adapter.default_permission_mode, mine.get(adapter.name, {})
                mode.set_options({name: PERMISSION_LABELS.get(name, name) + (' (default)' if name == default else '')
                                  for name in adapter.permission_modes}, value=chosen.get('permission_mode') or default)
                unattended.set_text(adapter.unattended)
                model.set_value(chosen.get('model') or '')
                model.set_autocomplete(adapter.models)
                pick.set_visibility(bool(adapter.models))
                known.clear()
                with known:
                    for name in adapter.models:
                        ui.menu_item(name, on_click=lambda name=name: model.set_value(name))
                explain_mode()
            runtime.on_value_change(runtime_chosen)
            mode.on_value_change(explain_mode)
            runtime_chosen()

            async def start() -> None:
                created = await act(agent_sessions.create, self.worktree['id'], runtime.value, prompt.value,
                                    model=(model.value or '').strip() or None, permission_mode=mode.value,
                                    mcp_server_ids=list(servers.value or []) if servers else None)
                if created is not FAILED:
                    await self.on_created(created.id)
            busy_button('Start session', start, icon='play_arrow').props('unelevated color=teal-8') \
                .mark('start-session')
        return True

