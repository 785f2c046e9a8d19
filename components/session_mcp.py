"""A session's MCP servers: the new-session form's picker and the session header's dialog (its creator chooses; the
servers run with the creator's grants). Both say which chosen OAuth servers the creator has not connected: those
are left out of the runs until they connect them (Settings → MCP authorizations)."""
from __future__ import annotations

from typing import Any

from nicegui import ui

from agor import mcp_servers

from .act import FAILED, act
from .choice_dialog import choose_many

LEFT_OUT = 'not connected by {who}: left out until connected under Settings → MCP authorizations'


async def choices() -> dict[str, Any] | None:
    """What the form's picker offers: the enabled servers and those the user connected (None: not readable). Read
    before the form is drawn, so the form appears whole."""
    servers = await act(mcp_servers.list_servers)
    connected = await act(mcp_servers.authenticated_server_ids)
    if servers is FAILED or connected is FAILED:
        return None
    return {'servers': [server for server in servers if server['enabled']], 'connected': connected}


def picker(offered: dict[str, Any] | None) -> ui.select | None:
    """The form's multi-select of enabled servers (None when there are none), with the warning under it."""
    if not offered or not offered['servers']:
        return None
    servers, connected = offered['servers'], offered['connected']
    select = ui.select({s['id']: s['name'] for s in servers}, value=[], multiple=True, label='MCP servers') \
        .props('outlined use-chips').classes('w-full').mark('session-mcp-servers')
    warning = ui.label().classes('text-xs text-orange-800').mark('mcp-left-out')
    oauth = {s['id']: s['name'] for s in servers if s['auth'] == 'oauth'}

    def warn() -> None:
        missing = [oauth[i] for i in select.value or [] if i in oauth and i not in connected]
        warning.set_text(f'{", ".join(missing)}: {LEFT_OUT.format(who="you")}' if missing else '')
    select.on_value_change(warn)
    return select


async def choose(session_id: str) -> None:
    """The header's dialog: the session's servers, from its next run on."""
    current = await act(mcp_servers.session_servers, session_id)
    if current is FAILED:
        return

    def left_out() -> None:
        if current['missing']:
            ui.label(f'{", ".join(current["missing"])}: {LEFT_OUT.format(who="you")}') \
                .classes('text-xs text-orange-800').mark('mcp-left-out')

    async def save(chosen: list[str]) -> bool:
        return await act(mcp_servers.set_session_servers, session_id, chosen, success='MCP servers saved') \
            is not FAILED
    choose_many(title='MCP servers', mark='session-mcp', options={s['id']: s['name'] for s in current['available']},
                selected=current['selected'], label='This session uses', empty='An admin has defined no MCP servers.',
                save=save, after=left_out)
