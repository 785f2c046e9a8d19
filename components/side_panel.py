"""The panel beside the board canvas: comments and open sessions as tabs. It never covers or blocks the canvas (no
backdrop, no modal); its left edge resizes it and the width is remembered for this user. At 900 px or less it takes
the screen, with "Board" to go back."""
from __future__ import annotations

from collections.abc import Callable
from typing import Any

from nicegui import app, ui

WIDTH_KEY = 'side_panel_width'
DEFAULT_WIDTH = 440
MIN_WIDTH = 320
MAX_WIDTH = 1600


class SidePanel(ui.element, component='side_panel.js'):
    """Tabs by key. `add` makes a tab (hidden until shown), `show` opens and selects it, `hide` closes it (its panel
    lives on: a comment draft survives), `remove` deletes it. The panel is visible while a tab is open; the newest
    shown is the top one, which Esc closes."""

    def __init__(self) -> None:
        super().__init__()
        self._props['width'] = _width(app.storage.user.get(WIDTH_KEY))
        self._props['min'] = MIN_WIDTH
        self._props['label'] = 'Comments and sessions'
        self.mark('side-panel')
        self.on('resized', self._resized)
        self._tabs: dict[str, ui.tab] = {}
        self._panels: dict[str, ui.tab_panel] = {}
        self._on_close: dict[str, Callable[[], Any]] = {}
        self._open: list[str] = []  # open tabs, the top one last
        with self:
            with ui.row().classes('agor-side-bar w-full items-center no-wrap gap-0 px-1'):
                ui.button('Board', icon='arrow_back', on_click=self.close_all) \
                    .props('flat dense no-caps aria-label="Back to the board"').classes('agor-side-back') \
                    .mark('side-back')
                self.tabs = ui.tabs(on_change=self._selected) \
                    .props('dense no-caps inline-label outside-arrows mobile-arrows align=left active-color=teal-8 '
                           'indicator-color=teal-8').classes('flex-1 min-w-0 text-slate-700')
            self.panels = ui.tab_panels(self.tabs).props(':animated=false').classes('w-full flex-1 min-h-0')
        self.set_visibility(False)

    def add(self, key: str, label: str, icon: str, *, on_close: Callable[[], Any] | None = None) -> ui.tab_panel:
        """A new tab, not shown yet: build its content inside the returned panel. Closing it calls `on_close` if
        given (which removes it), else hides it."""
        if on_close is not None:
            self._on_close[key] = on_close
        with self.tabs:
            self._tabs[key] = ui.tab(key, label=label, icon=icon).classes('max-w-[14rem]').mark(f'tab-{key}')
        self._tabs[key].set_visibility(False)
        with self.panels:
            self._panels[key] = ui.tab_panel(key).classes('p-0 h-full')
        return self._panels[key]

    def has(self, key: str) -> bool:
        return key in self._tabs

    def is_open(self, key: str) -> bool:
        return key in self._open

    @property
    def top(self) -> str | None:
        return self._open[-1] if self._open else None

    def rename(self, key: str, label: str) -> None:
        if key in self._tabs:
            self._tabs[key].set_label(label)

    def show(self, key: str) -> None:
        if key not in self._tabs:
            return
        self._raise(key)
        self._tabs[key].set_visibility(True)
        self.tabs.set_value(key)
        self.set_visibility(True)

    def toggle(self, key: str) -> None:
        if self.top == key:
            self.close(key)
        else:
            self.show(key)

    def close(self, key: str) -> None:
        on_close = self._on_close.get(key)
        if on_close is not None:
            on_close()
        else:
            self.hide(key)

    def close_top(self) -> bool:
        """Esc: close the top tab; False if none was open."""
        if self.top is None:
            return False
        self.close(self.top)
        return True

    def close_all(self) -> None:
        for key in list(self._open):
            self.close(key)

    def hide(self, key: str) -> None:
        if key not in self._tabs:
            return
        self._tabs[key].set_visibility(False)
        if key in self._open:
            self._open.remove(key)
        if self._open:
            self.tabs.set_value(self._open[-1])
        else:
            self.set_visibility(False)

    def remove(self, key: str) -> None:
        self.hide(key)
        if key in self._tabs:
            self._tabs.pop(key).delete()
            self._on_close.pop(key, None)
            self._panels.pop(key).delete()

    def _raise(self, key: str) -> None:
        if key in self._open:
            self._open.remove(key)
        self._open.append(key)

    def _selected(self, e: Any) -> None:
        if e.value in self._open:
            self._raise(e.value)

    def _resized(self, e: Any) -> None:
        width = e.args.get('width') if isinstance(e.args, dict) else None
        if isinstance(width, (int, float)):
            app.storage.user[WIDTH_KEY] = self._props['width'] = _width(width)


def _width(value: Any) -> int:
    """A remembered width, clamped; anything else is the default."""
    if not isinstance(value, (int, float)) or isinstance(value, bool):
        return DEFAULT_WIDTH
    return int(min(MAX_WIDTH, max(MIN_WIDTH, value)))
