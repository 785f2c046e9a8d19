"""Chimes: when a run of a session you created or follow ends (completed or failed) after at least your minimum
length, one of your open tabs plays your sound. Audio settings live in the user menu."""
from __future__ import annotations

import json

from nicegui import ui

from agor import preferences
from agor.events import UserEvent, topic
from agor.models import User

from .act import FAILED, act
from .listen import listen

PLAY = '''(() => {
  const key = "agor-chime-" + %(turn)s;  // one chime per run, however many tabs are open
  if (localStorage.getItem(key)) return;
  localStorage.setItem(key, "1");
  const audio = new Audio("/sounds/" + %(sound)s + ".wav");
  audio.volume = %(volume)s;
  window.agorChimes = window.agorChimes || [];
  audio.play().then(() => window.agorChimes.push(%(sound)s), (e) => window.agorChimes.push("blocked: " + e.name));
})()'''


def play(sound: str, volume: float, key: str) -> None:
    ui.run_javascript(PLAY % {'turn': json.dumps(key), 'sound': json.dumps(sound), 'volume': float(volume)})


class Chime:
    def __init__(self, user: User, anchor: ui.element) -> None:
        listen(anchor, topic('user', user.id), self.on_event)

    async def on_event(self, event: UserEvent) -> None:
        if event['type'] != 'run_finished':
            return
        settings = await act(preferences.chime)  # as stored now: they may have changed in another tab
        if settings is not FAILED and settings['enabled'] and event['seconds'] >= settings['min_seconds']:
            play(settings['sound'], settings['volume'], event['turn_id'])


async def audio_settings_dialog() -> None:
    current = await act(preferences.chime)
    if current is FAILED:
        return
    with ui.dialog() as dialog, ui.card().classes('w-96').mark('audio-settings'):
        ui.label('Audio settings').classes('text-lg font-semibold')
        ui.label('A chime when a run of a session you started or follow finishes.').classes('text-sm text-slate-600')
        enabled = ui.switch('Play chimes', value=current['enabled']).mark('chime-enabled')
        sound = ui.select(list(preferences.SOUNDS), value=current['sound'], label='Sound').props('outlined') \
            .classes('w-full')
        ui.label('Volume').classes('text-sm')
        volume = ui.slider(min=0, max=1, step=0.05, value=current['volume']).props('label')
        minimum = ui.number('Only after runs of at least (seconds)', value=current['min_seconds'], min=0, max=3600) \
            .props('outlined').classes('w-full')
        with ui.row().classes('w-full'):
            ui.button('Preview', icon='volume_up',
                      on_click=lambda: play(sound.value, volume.value, f'preview-{id(dialog)}-{volume.value}')) \
                .props('flat no-caps')
            ui.space()
            ui.button('Cancel', on_click=dialog.close).props('flat')

            async def save() -> None:
                saved = await act(preferences.set_chime, enabled=enabled.value, sound=sound.value,
                                  volume=volume.value, min_seconds=minimum.value or 0, success='Audio settings saved')
                if saved is not FAILED:
                    dialog.close()
            ui.button('Save', on_click=save).props('unelevated color=teal-8').mark('save-audio')
    dialog.open()
