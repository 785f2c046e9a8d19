"""Zone triggers in the board UI: the zone editor (with a live template preview and the zone's recent firings), the
picker a `show_picker` drop asks the dropping user, and the toast every viewer sees when a trigger starts a session."""
from __future__ import annotations

import asyncio
from collections.abc import Awaitable, Callable
from typing import Any

from nicegui import background_tasks, ui

from agor import boards, canvas, trigger_template, triggers
from agor.models import Board
from agor.runtimes import registry

from . import timestamp
from .act import FAILED, act

OpenSession = Callable[[str], Awaitable[None]]
ZONE_PALETTE = [('Slate', '#64748b', '#f1f5f9'), ('Teal', '#0d9488', '#f0fdfa'), ('Blue', '#2563eb', '#eff6ff'),
                ('Amber', '#d97706', '#fffbeb'), ('Rose', '#e11d48', '#fff1f2'), ('Violet', '#7c3aed', '#f5f3ff')]
VARIABLES = ' · '.join(f'{root}.{{{", ".join(fields)}}}' for root, fields in trigger_template.FIELDS.items())
STATUS_TEXT = {'started': 'started', 'picking': 'waiting for a choice', 'failed': 'failed', 'cancelled': 'cancelled'}


def runtime_options() -> dict[str, str]:
    return {name: runtime.label for name, runtime in registry.RUNTIMES.items()}


def self_deleting_dialog() -> ui.dialog:
    dialog = ui.dialog()
    dialog.on('hide', dialog.delete)
    return dialog


def zone_dialog(can_edit: bool, board: Board, zone: dict[str, Any], cards: list[dict[str, Any]],
                open_session: OpenSession) -> None:
    """Edit a zone (members: `can_edit`, checked again on save) or look at it (viewers): label, colour, lock, trigger,
    and its recent firings."""
    with self_deleting_dialog() as dialog, ui.card().classes('w-[34rem] max-w-[96vw]').mark('zone-dialog'):
        ui.label(f'Zone “{zone["label"]}”' if not can_edit else 'Zone').classes('text-lg font-semibold')
        if can_edit:
            label = ui.input('Label', value=zone['label']).props('outlined dense').classes('w-full')
            palette = {name: (border, background) for name, border, background in ZONE_PALETTE}
            current = next((n for n, (b, _) in palette.items() if b == zone['border']), None)
            colour = ui.select(list(palette), value=current, label='Colour').props('outlined dense').classes('w-full')
            locked = ui.switch('Locked (cannot be moved, resized or deleted)', value=zone['locked'])
            editor = TriggerEditor(board, zone, cards)
            dialog.on('hide', editor.stop)

            async def save() -> None:
                changes: dict[str, Any] = {'label': label.value, 'locked': locked.value, **editor.changes()}
                if colour.value:
                    changes['border_color'], changes['background_color'] = palette[colour.value]
                if await act(boards.update_zone, zone['id'], **changes, success='Zone saved') is not FAILED:
                    dialog.close()

            async def delete() -> None:
                if await act(boards.delete_zone, zone['id']) is not FAILED:
                    dialog.close()
        elif zone['trigger']:
            ui.label(f'Trigger: {canvas.TRIGGER_BEHAVIORS[zone["trigger_behavior"]].lower()} with '
                     f'{runtime_options().get(zone["trigger_runtime"])}') \
                .classes('text-sm text-slate-600')
            ui.label(zone['trigger_template']).classes('agor-trigger-preview w-full')
        else:
            ui.label('No trigger: this zone only organizes cards.').classes('text-sm text-slate-600')
        history = ui.column().classes('w-full gap-1').mark('zone-history')
        with ui.row().classes('w-full'):
            if can_edit:
                ui.button('Delete', on_click=delete).props('flat color=red-8')
            ui.space()
            ui.button('Close' if not can_edit else 'Cancel', on_click=dialog.close).props('flat')
            if can_edit:
                ui.button('Save', on_click=save).props('unelevated color=teal-8').mark('save-zone')
    dialog.open()

    async def show_history() -> None:
        firings = await act(triggers.history, zone['id'])
        if firings is FAILED:
            return
        with history:
            ui.label('Recent firings').classes('font-semibold mt-2')
            if not firings:
                ui.label('None yet: drop a card here.' if zone['trigger'] else 'None.') \
                    .classes('text-sm text-slate-600')
            for firing in firings:
                firing_row(firing, dialog, open_session)
    ui.timer(0, show_history, once=True)


def firing_row(firing: dict[str, Any], dialog: ui.dialog, open_session: OpenSession) -> None:
    async def go() -> None:
        dialog.close()
        await open_session(firing['session_id'])
    with ui.row().classes('agor-firing w-full items-center gap-1 text-sm no-wrap'):
        ui.label(f'{firing["by"]} sent {firing["worktree"]}').classes('shrink-0')
        if firing['session_id']:
            ui.button(firing['session'] or 'session', on_click=go).props('flat dense no-caps color=teal-8') \
                .classes('truncate min-w-0')
        text = STATUS_TEXT.get(firing['status'], firing['status'])
        ui.label(f'{text}: {firing["error"]}' if firing['error'] else text) \
            .classes('truncate ' + ('text-red-700' if firing['status'] == 'failed' else 'text-slate-600'))
        ui.space()
        timestamp(firing['created_at']).classes('text-xs text-slate-600 shrink-0')


class TriggerEditor:
    """The trigger part of the zone editor: template, behaviour, agent, and a preview that re-renders as you type
    against one of the board's cards (or the sample worktree), showing errors before anything is saved. A newer
    preview cancels the one still rendering (its template worker is stopped), as does closing the dialog."""

    def __init__(self, board: Board, zone: dict[str, Any], cards: list[dict[str, Any]]) -> None:
        self.board, self.zone = board, zone
        self._rendered: tuple[str, str | None] | None = None
        self._rendering: asyncio.Task | None = None
        with ui.expansion('Trigger', icon='bolt', value=bool(zone['trigger'])).classes('w-full border rounded') \
                .mark('trigger-section'):
            self.template = ui.textarea('Prompt template (empty: no trigger)', value=zone['trigger_template'],
                                        placeholder='Review {{ worktree.name }} on {{ worktree.branch }}…') \
                .props('outlined autogrow input-class="font-mono text-sm"').classes('w-full').mark('trigger-template')
            ui.label(f'Variables: {VARIABLES}').classes('text-xs text-slate-600')
            with ui.row().classes('w-full gap-2 no-wrap'):
                self.behavior = ui.select(canvas.TRIGGER_BEHAVIORS, value=zone['trigger_behavior'],
                                          label='When a card is dropped').props('outlined dense').classes('flex-1') \
                    .mark('trigger-behavior')
                self.runtime = ui.select(runtime_options(), label='Agent', value=zone['trigger_runtime']) \
                    .props('outlined dense').classes('flex-1').mark('trigger-runtime')
            options = {c['id']: c['name'] for c in cards}
            self.sample = ui.select(options, label='Preview with', value=next(
                (c['id'] for c in cards if c['zone'] == zone['id']), next(iter(options), None))) \
                .props('outlined dense').classes('w-full').mark('preview-with')
            self.sample.set_visibility(bool(options))
            self.preview = ui.label().classes('agor-trigger-preview w-full').mark('trigger-preview')
        ui.timer(0.3, self._refresh)

    def changes(self) -> dict[str, Any]:
        return {'trigger_template': self.template.value or None, 'trigger_behavior': self.behavior.value,
                'trigger_runtime': self.runtime.value}

    def stop(self) -> None:
        if self._rendering is not None:
            self._rendering.cancel()

    def _refresh(self) -> None:
        """Re-render when the template or the sample changed (at most every 0.3 s while typing)."""
        key = (self.template.value or '', self.sample.value)
        if key == self._rendered:
            return
        self._rendered = key
        self.stop()
        if not key[0].strip():
            self._show('No trigger: dropping a card here only moves it.', 'empty')
            return
        self._rendering = background_tasks.create(self._render(key), name='trigger preview', context=self.preview)

    async def _render(self, key: tuple[str, str | None]) -> None:
        result = await act(triggers.preview, self.board.id, self.zone['id'], key[0], key[1])
        if result is not FAILED and self._rendered == key:  # still what is in the box
            if result['error']:
                self._show(result['error'], 'error')
            else:
                self._show(result['text'], 'ok')

    def _show(self, text: str, state: str) -> None:
        self.preview.set_text(text)
        self.preview.classes(replace=f'agor-trigger-preview w-full agor-trigger-preview-{state}')


def picker_dialog(firing: dict[str, Any]) -> None:
    """`show_picker`: the dropping user prompts one of their sessions of the worktree or starts a new one (the
    toast that follows links to it). Cancel leaves the card in the zone and starts nothing."""
    answered = False
    with self_deleting_dialog().props('persistent') as dialog, ui.card().classes('w-[32rem] max-w-[96vw]') \
            .mark('trigger-picker'):
        ui.label(f'Zone trigger: {firing["zone"]}').classes('text-lg font-semibold')
        ui.label(f'You dropped {firing["worktree"]} here. Where should the prompt go?').classes('text-sm')
        choices = {'new': 'Start a new session'}
        if firing['sessions']:
            choices['existing'] = 'Prompt one of my sessions'
        mode = ui.radio(choices, value='existing' if firing['default_session'] else 'new').props('inline') \
            .mark('picker-mode')
        runtime = ui.select(runtime_options(), value=firing['runtime'], label='Agent').props('outlined dense') \
            .classes('w-full').bind_visibility_from(mode, 'value', value='new').mark('picker-runtime')
        existing = ui.select({s['id']: s['label'] for s in firing['sessions']}, value=firing['default_session'],
                             label='Session').props('outlined dense').classes('w-full') \
            .bind_visibility_from(mode, 'value', value='existing').mark('picker-session')
        ui.label('Prompt').classes('text-xs text-slate-600 mt-1')
        ui.label(firing['prompt']).classes('agor-trigger-preview agor-trigger-preview-ok w-full max-h-48 overflow-auto')

        async def run() -> None:
            nonlocal answered
            result = await act(triggers.pick, firing['id'],
                               session_id=existing.value if mode.value == 'existing' else None,
                               runtime=runtime.value if mode.value == 'new' else None)
            if result is not FAILED:
                answered = True
                dialog.close()

        async def cancel() -> None:
            nonlocal answered
            if not answered:
                answered = True
                await act(triggers.cancel, firing['id'])
            dialog.close()
        with ui.row().classes('w-full justify-end'):
            ui.button('Cancel', on_click=cancel).props('flat')
            ui.button('Run', icon='play_arrow', on_click=run).props('unelevated color=teal-8').mark('picker-run')
    dialog.open()


class Toasts:
    """A stack of toasts at the bottom left with an action button (NiceGUI's ui.notify cannot call back Python)."""

    def __init__(self) -> None:
        self.stack = ui.column().classes('fixed bottom-4 left-4 z-[7000] gap-2 items-start')

    def show(self, text: str, action: str, on_action: Callable[[], Any], seconds: float = 12) -> None:
        with self.stack:
            with ui.card().classes('agor-toast flex-row items-center gap-3 py-2 px-4 no-wrap') as toast:
                toast.mark('toast')
                ui.icon('bolt', color='amber-10').classes('text-xl')
                ui.label(text).classes('text-sm')

                async def act_on() -> None:
                    toast.delete()
                    await on_action()
                ui.button(action, on_click=act_on).props('flat dense no-caps color=teal-8')
                ui.button(icon='close', on_click=toast.delete).props('flat round dense size=sm color=grey-7')
                ui.timer(seconds, toast.delete, once=True)
