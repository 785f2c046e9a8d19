"""Admin → MCP servers: the instance's servers, add / edit / delete, and Test connection (lists the tools or says why
not). Secret values (a stdio server's env, a header value, a client secret) go to the server only: the form shows
whether one is set, never what it is; leaving a secret field empty keeps the stored value."""
from __future__ import annotations

import shlex
from typing import Any

from nicegui import ui

from agor import mcp_probe, mcp_servers
from agor.config import Settings

from .act import FAILED, act
from .busy import busy_button
from .listing import refill

TRANSPORTS = {'stdio': 'stdio (a command)', 'http': 'Streamable HTTP', 'sse': 'SSE'}
AUTHS = {'none': 'None', 'header': 'Header (a secret value)', 'oauth': 'OAuth (each user connects)'}


class McpServersAdmin:
    def __init__(self, settings: Settings) -> None:
        self.settings = settings
        with ui.card().classes('w-full').mark('mcp-servers'):
            with ui.row().classes('w-full items-center'):
                ui.label('MCP servers').classes('text-lg font-semibold')
                ui.space()
                ui.button('Add server', icon='add', on_click=lambda: self.edit(None)) \
                    .props('unelevated dense no-caps color=teal-8').mark('add-mcp-server')
            ui.label('Sessions choose from these. OAuth servers run with the session creator\'s own grant.') \
                .classes('text-sm text-slate-600')
            self.rows = ui.column().classes('w-full gap-0')
        ui.timer(0.1, self.refresh, once=True)

    async def refresh(self) -> None:
        await refill(self.rows, mcp_servers.list_servers, self.row, 'No MCP servers yet.')

    def row(self, server: dict[str, Any]) -> None:
        with ui.row().classes('w-full items-center gap-3 border-t border-slate-100 py-1') \
                .mark(f'mcp-server-{server["name"]}'):
            ui.label(server['name']).classes('w-40 font-semibold truncate')
            ui.label(f'{server["transport"]} · {server["auth"]}').classes('w-32 text-sm')
            where = server['url'] or ' '.join([server.get('command') or '', *server.get('args', [])])
            ui.label(where).classes('font-mono text-xs text-slate-600 truncate flex-1')
            if not server['enabled']:
                ui.badge('disabled', color='grey-8').props('outline')
            result = ui.label().classes('text-xs max-w-xs truncate').mark('mcp-test-result')
            busy_button('Test', lambda: self.test(server, result), icon='network_check') \
                .props('flat dense no-caps').mark('mcp-test')
            ui.button(icon='edit', on_click=lambda: self.edit(server)).props('flat round dense').tooltip('Edit')
            ui.button(icon='delete', on_click=lambda: self.delete(server)).props('flat round dense color=red') \
                .tooltip('Delete')

    async def test(self, server: dict[str, Any], result: ui.label) -> None:
        outcome = await act(mcp_probe.test_connection, server['id'], self.settings)
        if outcome is FAILED:
            return
        if not outcome['ok']:
            result.set_text(outcome['error'])
            result.classes(replace='text-xs max-w-xs truncate text-red-700')
        else:
            result.set_text(outcome.get('note') or f'Tools: {", ".join(outcome["tools"]) or "none"}')
            result.classes(replace='text-xs max-w-xs truncate text-teal-800')
        result.tooltip(result.text)

    async def delete(self, server: dict[str, Any]) -> None:
        with ui.dialog() as dialog, ui.card():
            ui.label(f'Delete {server["name"]}?').classes('text-lg font-semibold')
            ui.label('Every user\'s grant for it and every session\'s selection of it go too.')

            async def confirm() -> None:
                if await act(mcp_servers.delete_server, server['id'], success=f'{server["name"]} deleted') \
                        is not FAILED:
                    dialog.close()
                    await self.refresh()
            with ui.row().classes('w-full justify-end'):
                ui.button('Cancel', on_click=dialog.close).props('flat')
                busy_button('Delete', confirm).props('unelevated color=red')
        dialog.open()

    def edit(self, server: dict[str, Any] | None) -> None:
        server = server or {}
        with ui.dialog() as dialog, ui.card().classes('w-[36rem] max-w-full').mark('mcp-server-dialog'):
            ui.label(f'Edit {server["name"]}' if server else 'Add an MCP server').classes('text-lg font-semibold')
            name = ui.input('Server name', value=server.get('name', '')).props('outlined dense').classes('w-full') \
                .mark('mcp-name')
            transport = ui.select(TRANSPORTS, value=server.get('transport', 'http'), label='Transport') \
                .props('outlined dense').classes('w-full').mark('mcp-transport')
            with ui.column().classes('w-full gap-2') as stdio:
                command = ui.input('Command', value=server.get('command') or '').props('outlined dense') \
                    .classes('w-full')
                args = ui.input('Arguments', value=shlex.join(server.get('args', []))).props('outlined dense') \
                    .classes('w-full')
                env = ui.textarea('Environment: NAME=value per line sets NAME, NAME= deletes it, names not listed stay '
                                  f'(set: {", ".join(server.get("env_names", [])) or "none"})') \
                    .props('outlined dense autogrow').classes('w-full').mark('mcp-env')
            with ui.column().classes('w-full gap-2') as remote:
                url = ui.input('URL', value=server.get('url') or '').props('outlined dense').classes('w-full') \
                    .mark('mcp-url')
                auth = ui.select(AUTHS, value=server.get('auth', 'none'), label='Authentication') \
                    .props('outlined dense').classes('w-full').mark('mcp-auth')
                with ui.row().classes('w-full gap-2 no-wrap') as header:
                    header_name = ui.input('Header', value=server.get('header_name') or 'Authorization') \
                        .props('outlined dense').classes('w-40')
                    kept = ' (set; type to replace; again if the URL changes)'
                    header_value = ui.input('Value' + (kept if server.get('header_set') else ''), password=True) \
                        .props('outlined dense autocomplete=new-password') \
                        .classes('flex-1')
                with ui.column().classes('w-full gap-2') as oauth:
                    client_id = ui.input('Client id (empty: dynamic registration)',
                                         value=server.get('client_id') or '').props('outlined dense').classes('w-full')
                    client_secret = ui.input('Client secret' + (kept if server.get('client_secret_set') else ''),
                                             password=True) \
                        .props('outlined dense autocomplete=new-password').classes('w-full')
                    scopes = ui.input('Scopes (space-separated; empty: what the server offers)',
                                      value=server.get('scopes') or '').props('outlined dense').classes('w-full')
                    resource = ui.checkbox('Send the resource parameter (RFC 8707)',
                                           value=server.get('send_resource', True))
            enabled = ui.checkbox('Enabled', value=server.get('enabled', True))

            def shown() -> None:
                stdio.set_visibility(transport.value == 'stdio')
                remote.set_visibility(transport.value != 'stdio')
                header.set_visibility(auth.value == 'header')
                oauth.set_visibility(auth.value == 'oauth')
            transport.on_value_change(shown)
            auth.on_value_change(shown)
            shown()

            async def save() -> None:
                try:
                    arg_list = shlex.split(args.value or '')
                except ValueError:
                    ui.notify('The arguments have an unclosed quote.', type='warning')
                    return
                fields: dict[str, Any] = {
                    'name': name.value, 'transport': transport.value, 'command': command.value, 'args': arg_list,
                    'url': url.value, 'auth': auth.value, 'header_name': header_name.value,
                    'client_id': client_id.value, 'scopes': scopes.value, 'send_resource': resource.value,
                    'enabled': enabled.value}
                if (env.value or '').strip():
                    pairs = [line.split('=', 1) for line in env.value.splitlines() if line.strip()]
                    if any(len(pair) != 2 for pair in pairs):
                        ui.notify('Write the environment as NAME=value, one per line.', type='warning')
                        return
                    fields['env'] = {key.strip(): value for key, value in pairs}
                for key, field in (('header_value', header_value), ('client_secret', client_secret)):
                    if field.value:
                        fields[key] = field.value
                saved = await act(mcp_servers.save_server, server.get('id'), fields,
                                  self.settings.mcp_allow_loopback, success='MCP server saved')
                if saved is not FAILED:
                    dialog.close()
                    await self.refresh()
            with ui.row().classes('w-full justify-end'):
                ui.button('Cancel', on_click=dialog.close).props('flat')
                busy_button('Save', save).props('unelevated color=teal-8').mark('save-mcp-server')
        dialog.open()
