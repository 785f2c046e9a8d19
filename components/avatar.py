"""A person's avatar: their uploaded image, or their initials on their colour."""
from __future__ import annotations

from nicegui import ui


def avatar(name: str, initials: str, color: str, url: str | None = None, *, size: str = '32px') -> ui.avatar:
    if url:
        with ui.avatar(size=size) as element:
            ui.image(url).classes('w-full h-full').props('fit=cover no-spinner no-transition')
    else:
        element = ui.avatar(initials, color=color, text_color='white', size=size).props('font-size="13px"')
    element.tooltip(name)
    return element
