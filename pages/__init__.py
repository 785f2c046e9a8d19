"""NiceGUI pages: thin; they build components, call services and subscribe to board events."""
from agor.config import Settings
from agor.terminals import TerminalService

from . import (admin_page, api, auth_pages, avatars, board_page, boards_page, gateway, mcp_endpoint, mcp_routes,
               repos_page, terminal_page)


def register(settings: Settings, terminal_service: TerminalService) -> None:
    """Called from app.on_startup, so the pages register again in every test (see docs/architecture.md). Every page
    gets the settings from here."""
    for module in (auth_pages, boards_page, board_page, repos_page, admin_page, api, mcp_endpoint, mcp_routes, gateway):
        module.register(settings)
    avatars.register()
    terminal_page.register(settings, terminal_service)
