"""Reusable NiceGUI components: each is a Python class (and, when it draws in the browser, a Vue file)."""
from datetime import datetime
from html import escape
from pathlib import Path

from nicegui import ui

from agor.boards import ICON_NAME

HERE = Path(__file__).parent


def add_assets() -> None:
    """Every component stylesheet and the page-wide scripts, shared by all pages."""
    for css in sorted(HERE.glob('*.css')):
        ui.add_css(css.read_text(), shared=True)
    for script in ('timeago.js', 'favicon.js', 'transcript_stream.js', 'a11y.js'):  # plain (other .js: Vue components)
        ui.add_head_html(f'<script>{(HERE / script).read_text()}</script>', shared=True)


def board_icon(icon: str) -> str:
    """The Material icon a board shows: its own, or `dashboard` for a board made before icons were Material names
    (an emoji, which shows as an empty box where no emoji font is installed)."""
    return icon if ICON_NAME.fullmatch(icon) else 'dashboard'


def timestamp(moment: str | datetime) -> ui.html:
    """A relative time ("5 min ago") with the full date and time on hover (see timeago.js)."""
    iso = moment.isoformat() if isinstance(moment, datetime) else moment
    return ui.html(f'<time class="agor-time" datetime="{escape(iso)}">{escape(iso[:16].replace("T", " "))} UTC</time>',
                   sanitize=False, tag='span')
