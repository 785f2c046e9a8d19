"""NiceGUI pages: thin; they build components, call services and subscribe to board events."""
from agor.config import Settings
from agor.terminals import TerminalService

from . import admin_page, auth_pages, board_page, boards_page, frame, repos_page, terminal_page


def register(settings: Settings, terminal_service: TerminalService) -> None:
    """Called from app.on_startup, so the pages register again in every test (see docs/architecture.md)."""
    frame.configure(settings)
    for module in (auth_pages, boards_page, board_page, repos_page, admin_page):
        module.register()
    terminal_page.register(terminal_service)
