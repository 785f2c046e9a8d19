"""Settings → Profile → Audio: the chime when a run of a session you started or follow finishes
(`components.chime` plays it)."""
from __future__ import annotations

from nicegui import ui

from agor import preferences

from ..act import FAILED, act
from ..chime import play
from .section import Section, intro


async def build(user_id: str) -> None:
    current = await act(preferences.chime)
    if current is FAILED:
        return
    with ui.column().classes('w-96 gap-2').mark('audio-settings'):
        intro('A chime when a run of a session you started or follow finishes.')
        enabled = ui.switch('Play chimes', value=current['enabled']).mark('chime-enabled')
        sound = ui.select(list(preferences.SOUNDS), value=current['sound'], label='Sound').props('outlined') \
            .classes('w-full')
        ui.label('Volume').classes('text-sm')
        volume = ui.slider(min=0, max=1, step=0.05, value=current['volume']).props('label aria-label=Volume')
        minimum = ui.number('Only after runs of at least (seconds)', value=current['min_seconds'], min=0, max=3600) \
            .props('outlined').classes('w-full')
        with ui.row().classes('w-full'):
            ui.button('Preview', icon='volume_up',
                      on_click=lambda: play(sound.value, volume.value, f'preview-{id(enabled)}-{volume.value}')) \
                .props('flat no-caps')
            ui.space()
            ui.button('Save', on_click=lambda: act(
                preferences.set_chime, enabled=enabled.value, sound=sound.value, volume=volume.value,
                min_seconds=minimum.value or 0, success='Audio settings saved')) \
                .props('unelevated color=teal-8').mark('save-audio')


SECTION = Section(group='Profile', key='audio', label='Audio', build=build)
