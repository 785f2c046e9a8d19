"""Buttons that show their work: while the action a button started runs, the button is disabled and shows a
spinner, so a slow action (creating an account, cloning, creating a worktree, starting a session: anything that may
take more than 300 ms) shows progress where it was asked for and cannot be started twice by a second click."""
from __future__ import annotations

from collections.abc import Awaitable, Callable, Iterator
from contextlib import contextmanager
from typing import Any

from nicegui import ui


def busy_button(text: str, action: Callable[[], Awaitable[Any]], *, icon: str | None = None) -> ui.button:
    """A button whose action runs under `busy`."""
    async def run(e: Any) -> None:
        with busy(e.sender):
            await action()
    return ui.button(text, icon=icon, on_click=run)


@contextmanager
def busy(button: ui.button) -> Iterator[None]:
    button.props('loading aria-busy=true')
    try:
        yield
    finally:
        if not button.is_deleted:
            button.props(remove='loading aria-busy')
