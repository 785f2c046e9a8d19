from __future__ import annotations

from collections.abc import Awaitable, Callable
from typing import Any

from nicegui import ui


class CommentEditor(ui.element, component='comment_editor.js'):
    """A Markdown textarea with @mention autocomplete; `on_submit` gets the text (call `clear()` once it is saved)."""

    def __init__(self, users: list[dict[str, str]], on_submit: Callable[[str], Awaitable[Any]], *,
                 placeholder: str = 'Add a comment…', submit_label: str = 'Send', initial: str = '',
                 on_cancel: Callable[[], Any] | None = None, on_typing: Callable[[str], Any] | None = None) -> None:
        super().__init__()
        self._props['users'] = tuple(users)
        self._props['placeholder'] = placeholder
        self._props['submitLabel'] = submit_label
        self._props['initial'] = initial
        self._props['cancellable'] = on_cancel is not None
        self.on('submit', lambda e: on_submit(str(e.args.get('text', ''))))
        if on_cancel is not None:
            self.on('cancel', lambda: on_cancel())
        if on_typing is not None:
            self.on('typing', lambda e: on_typing(str(e.args.get('text', ''))), throttle=0.5)
        self.classes('w-full')

    def clear(self) -> None:
        self.run_method('clear')

    def focus(self) -> None:
        self.run_method('focus')
