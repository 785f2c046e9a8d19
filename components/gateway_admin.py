"""Admin → Chat gateway: channels (create, edit, delete; secrets write-only) and each one's identity map (external
user id → Agor user). Every handler goes through `act` to `agor.gateway.channels`, which refuses non-admins."""
from __future__ import annotations

from typing import Any

from nicegui import ui

from agor.gateway import channels
from agor.models.gateway import SLACK_API
from agor.runtimes.registry import RUNTIMES

from .act import FAILED, act
from .listing import refill

KEEP = 'stored: leave empty to keep'


class GatewayAdmin:
    def __init__(self, base_url: str) -> None:
        self.base_url = base_url.rstrip('/')
        with ui.row().classes('w-full items-center'):
            ui.label('Chat gateway').classes('text-lg font-semibold')
            ui.space()
            ui.button('New channel', icon='add', on_click=lambda: self.edit(None)) \
                .props('unelevated color=teal-8 no-caps').mark('new-channel')
        ui.label('A Slack app whose events reach the webhook below: messages of linked people start or continue '
                 'sessions in the channel\'s worktree, as them (docs/gateway.md).').classes('text-sm text-slate-600')
        self.listing = ui.column().classes('w-full gap-2').mark('channels')

    async def refresh(self) -> None:
        """The whole listing from one read (a teammate deleting another channel meanwhile cannot break it)."""
        await refill(self.listing, channels.listing, lambda pair: self.row(*pair), 'No channels yet.',
                     pick=lambda listing: [(channel, listing['users']) for channel in listing['channels']])

    def row(self, channel: dict[str, Any], users: list[dict[str, str]]) -> None:
        with ui.column().classes('w-full border-t border-slate-100 pt-2 gap-1').mark(f'channel-{channel["name"]}'):
            with ui.row().classes('w-full items-center gap-3'):
                ui.label(channel['name']).classes('font-semibold')
                ui.label(f'{channel["target"]} · {RUNTIMES[channel["runtime"]].label}').classes('text-sm')
                if not channel['enabled']:
                    ui.badge('disabled', color='grey-8').props('outline')
                ui.space()
                ui.button('Edit', on_click=lambda: self.edit(channel)).props('flat dense no-caps') \
                    .mark('edit-channel')
                ui.button('Delete', on_click=lambda: self.delete(channel)).props('flat dense no-caps color=negative') \
                    .mark('delete-channel')
            ui.label(f'Webhook: {self.base_url}{channel["webhook_path"]}').classes('font-mono text-xs') \
                .mark('channel-webhook')
            ui.label('People (external user id → Agor user)').classes('text-sm font-semibold')
            box = ui.column().classes('w-full gap-1 pl-4 text-sm')
        self.people(box, channel['id'], channel['identities'], users)

    async def show_people(self, box: ui.column, channel_id: str) -> None:
        mapped = await act(channels.identities, channel_id)
        users = await act(channels.linkable_users)
        if mapped is not FAILED and users is not FAILED:
            self.people(box, channel_id, mapped, users)

    def people(self, box: ui.column, channel_id: str, mapped: list[dict[str, Any]],
               users: list[dict[str, str]]) -> None:
        box.clear()
        with box:
            for link in mapped:
                with ui.row().classes('w-full items-center gap-3').mark('identity-row'):
                    ui.label(link['external_id']).classes('font-mono w-40')
                    ui.label(f'{link["user"]} ({link["email"]})')
                    ui.space()

                    async def remove(link_id: str = link['id']) -> None:
                        if await act(channels.unmap_identity, link_id, success='Unlinked') is not FAILED:
                            await self.show_people(box, channel_id)
                    ui.button(icon='delete', on_click=remove).props('flat round dense color=negative') \
                        .tooltip('Unlink').mark('unmap-identity')
            with ui.row().classes('w-full items-center gap-2'):
                external = ui.input('External user id', placeholder='U0123ABCD').props('outlined dense') \
                    .classes('w-48').mark('identity-external')
                person = ui.select({u['id']: u['label'] for u in users}, label='Agor user') \
                    .props('outlined dense').classes('w-64').mark('identity-user')

                async def add() -> None:
                    if await act(channels.map_identity, channel_id, external.value, person.value,
                                 success='Linked') is not FAILED:
                        await self.show_people(box, channel_id)
                ui.button('Link', on_click=add).props('unelevated color=teal-8 no-caps').mark('map-identity')

    async def delete(self, channel: dict[str, Any]) -> None:
        with ui.dialog() as dialog, ui.card():
            ui.label(f'Delete {channel["name"]}? Its webhook stops working; its sessions stay on the board.')
            with ui.row():
                ui.button('Cancel', on_click=dialog.close).props('flat no-caps')
                ui.button('Delete', on_click=lambda: dialog.submit(True)).props('unelevated color=negative no-caps') \
                    .mark('confirm-delete-channel')
        if await dialog and await act(channels.delete_channel, channel['id'], success='Channel deleted') \
                is not FAILED:
            await self.refresh()
        dialog.delete()

    async def edit(self, channel: dict[str, Any] | None) -> None:
        targets = await act(channels.targets)
        if targets is FAILED:
            return
        current = channel or {}
        options = {f'{t["board_id"]}/{t["worktree_id"]}': t['label'] for t in targets}
        chosen = f'{current.get("board_id")}/{current.get("worktree_id")}' if channel else None
        env_changes: dict[str, str | None] = {}
        with ui.dialog() as dialog, ui.card().classes('w-[40rem] max-w-full').mark('channel-dialog'):
            ui.label('Edit channel' if channel else 'New channel').classes('text-lg font-semibold')
            name = ui.input('Channel name', value=current.get('name', '')).props('outlined dense').classes('w-full') \
                .mark('channel-name')
            target = ui.select(options, value=chosen if chosen in options else None,
                               label='Board · worktree its sessions start in').props('outlined dense') \
                .classes('w-full').mark('channel-target')
            runtime = ui.select({n: r.label for n, r in RUNTIMES.items()}, value=current.get('runtime', 'claude-code'),
                                label='Agent').props('outlined dense').classes('w-full').mark('channel-runtime')
            secret = ui.input('Signing secret', password=True, placeholder=KEEP if channel else '') \
                .props('outlined dense autocomplete=new-password').classes('w-full').mark('channel-signing-secret')
            token = ui.input('Bot token (xoxb-…)', password=True, placeholder=KEEP if channel else '') \
                .props('outlined dense autocomplete=new-password').classes('w-full').mark('channel-bot-token')
            api_base = ui.input('Slack Web API', value=current.get('api_base', SLACK_API)) \
                .props('outlined dense').classes('w-full').mark('channel-api-base')
            servers = ui.input('MCP server ids (comma-separated)', value=', '.join(current.get('mcp_server_ids', []))) \
                .props('outlined dense').classes('w-full').mark('channel-mcp-servers')
            enabled = ui.switch('Enabled', value=current.get('enabled', True)).mark('channel-enabled')
            ui.label('Variables (encrypted; values are never shown again)').classes('text-sm font-semibold pt-2')
            names = ui.column().classes('w-full gap-0')

            def show_names() -> None:
                names.clear()
                kept = [n for n in current.get('env_names', []) if env_changes.get(n, '') is not None]
                with names:
                    for var in sorted({*kept, *(n for n, v in env_changes.items() if v is not None)}):
                        with ui.row().classes('items-center gap-2'):
                            ui.label(var).classes('font-mono text-sm w-48')
                            ui.button(icon='delete', on_click=lambda v=var: (env_changes.__setitem__(v, None),
                                                                             show_names())) \
                                .props('flat round dense color=negative').mark(f'remove-channel-var-{var}')
            show_names()
            with ui.row().classes('w-full items-center gap-2 no-wrap'):
                var_name = ui.input('Variable name').props('outlined dense').classes('w-48').mark('channel-var-name')
                var_value = ui.input('Variable value', password=True) \
                    .props('outlined dense autocomplete=new-password') \
                    .classes('flex-1').mark('channel-var-value')

                def add_var() -> None:
                    if var_name.value and var_value.value:
                        env_changes[var_name.value.strip()] = var_value.value
                        var_name.value, var_value.value = '', ''
                        show_names()
                ui.button('Add', icon='add', on_click=add_var).props('flat no-caps').mark('add-channel-var')

            async def save() -> None:
                board_id, _, worktree_id = (target.value or '/').partition('/')
                fields = {'name': name.value, 'board_id': board_id, 'worktree_id': worktree_id,
                          'runtime': runtime.value, 'signing_secret': secret.value, 'bot_token': token.value,
                          'api_base': api_base.value, 'mcp_server_ids': servers.value or '',
                          'enabled': enabled.value, 'env': env_changes}
                secret.value, token.value = '', ''
                if await act(channels.save_channel, current.get('id'), fields, success='Channel saved') \
                        is not FAILED:
                    dialog.close()
                    await self.refresh()
            with ui.row().classes('w-full justify-end'):
                ui.button('Cancel', on_click=dialog.close).props('flat no-caps')
                ui.button('Save', on_click=save).props('unelevated color=teal-8 no-caps').mark('save-channel')
        dialog.on('hide', dialog.delete)
        dialog.open()
