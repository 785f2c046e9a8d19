"""A person's avatar: their uploaded image, or their initials on their colour."""
from __future__ import annotations

import json

from nicegui import ui


def avatar(name: str, initials: str, color: str, url: str | None = None, *, size: str = '32px',
           tooltip: bool = True) -> ui.avatar:
    """`tooltip`: the name on hover (off where a tooltip of its own or the name beside it says more)."""
    if url:
        with ui.avatar(size=size) as element:
            ui.image(url).classes('w-full h-full') \
                .props(f'fit=cover no-spinner no-transition alt={json.dumps(name)}')  # its name for a screen reader
    else:
        element = ui.avatar(initials, color=color, text_color='white', size=size).props('font-size="13px"')
    if tooltip:
        element.tooltip(name)
    return element
