"""Chimes: when a run of a session you created or follow ends (completed or failed) after at least your minimum
length, one of your open tabs plays your sound. Its settings are Settings → Profile → Audio
(components/settings/audio.py)."""
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
