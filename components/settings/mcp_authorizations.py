"""Settings → Profile → MCP authorizations: the user's own OAuth grant per MCP server (connected / not connected /
needs re-auth), Connect (the browser goes to the authorization server and comes back through the app's callback to
this page) and Disconnect (revoked at the authorization server, then deleted)."""
from __future__ import annotations

from nicegui import ui

from agor import mcp_oauth, mcp_servers
from agor.config import Settings

from .. import timestamp
from ..act import FAILED, act
from .section import Section, intro

STATUS = {'connected': ('Connected', 'positive'), 'needs_reauth': ('Needs re-auth', 'orange'),
          'not_connected': ('Not connected', 'grey-7')}


def section(settings: Settings) -> Section:
    async def build(user_id: str) -> None:
        intro('MCP servers that use OAuth act with your own authorization: sessions you start call them as you '
              '(whoever prompts). Connect each one you want your sessions to use.')
        rows = ui.column().classes('w-full gap-1').mark('mcp-grants')

        async def refresh() -> None:
            servers = await act(mcp_servers.list_servers)
            states = await act(mcp_servers.grant_states)
            if servers is FAILED or states is FAILED:
                return
            rows.clear()
            with rows:
                oauth = [server for server in servers if server['id'] in states and server['enabled']]
                if not oauth:
                    ui.label('No MCP server here uses OAuth.').classes('text-sm text-slate-500')
                for server in oauth:
                    state = states[server['id']]
                    label, color = STATUS.get(state['status'], STATUS['not_connected'])
                    with ui.row().classes('w-full items-center gap-3 border-t border-slate-100 py-2') \
                            .mark(f'mcp-grant-{server["name"]}'):
                        ui.label(server['name']).classes('font-semibold w-40 truncate')
                        ui.badge(label, color=color).props('outline').mark('mcp-grant-status')
                        if state.get('expires_at'):
                            with ui.row().classes('text-xs text-slate-500 gap-1'):
                                ui.label('access token expires')
                                timestamp(state['expires_at'])
                        if state.get('error') and state['status'] == 'needs_reauth':
                            ui.label(state['error']).classes('text-xs text-orange-800 truncate max-w-xs')
                        ui.space()
                        if state['status'] != 'connected':
                            ui.button('Connect' if state['status'] == 'not_connected' else 'Reconnect', icon='link',
                                      on_click=lambda s=server: connect(s['id'])) \
                                .props('unelevated dense no-caps color=teal-8').mark('mcp-connect')
                        if state['status'] != 'not_connected':
                            ui.button('Disconnect', icon='link_off', on_click=lambda s=server: disconnect(s)) \
                                .props('flat dense no-caps color=red').mark('mcp-disconnect')

        async def connect(server_id: str) -> None:
            callback = str(ui.context.client.request.base_url).rstrip('/') + mcp_oauth.CALLBACK_PATH
            url = await act(mcp_oauth.authorize_url, server_id, callback, settings.mcp_allow_loopback)
            if url is not FAILED:
                ui.navigate.to(url)

        async def disconnect(server: dict) -> None:
            revoked = await act(mcp_oauth.disconnect, server['id'])
            if revoked is not FAILED:
                ui.notify(f'Disconnected from {server["name"]}' + ('' if revoked else
                          ' (its authorization server offers no revocation: the grant was deleted here)'),
                          type='positive')
                await refresh()
        await refresh()

    return Section('Profile', 'mcp-authorizations', 'MCP authorizations', build)
