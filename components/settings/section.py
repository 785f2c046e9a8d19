"""One page of the Settings dialog: where it sits in the left rail and how it builds itself."""
from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass

from nicegui import ui


@dataclass(frozen=True)
class Section:
    group: str  # the rail's heading: 'Profile' or 'Agentic Tools'
    key: str  # the deep link: ?settings=<key>
    label: str
    build: Callable[[str], None]  # builds the page into the current container for the user id; handlers use act()


def intro(text: str) -> ui.label:
    """The line at the top of a page that says what it is for."""
    return ui.label(text).classes('text-sm text-slate-600')
