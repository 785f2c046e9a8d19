"""Admin: people and roles, invite links, MCP servers, chat gateway channels, demo reset."""
from __future__ import annotations

from nicegui import ui

from agor import auth, demo, terminals, unix_accounts
from agor.config import Settings
from agor.runtimes import registry
from agor.models import Role, User

from components.act import FAILED, act
from components.avatar import avatar
from components.gateway_admin import GatewayAdmin
from components.mcp_servers_admin import McpServersAdmin

from .frame import header, page


def register(settings: Settings) -> None:
    page('/admin', settings, role=Role.admin, title='Admin · Agor')(admin_page)


async def admin_page(user: User, settings: Settings) -> None:
    header(user, settings)
    grantable = [r.name for r in Role if r <= user.level and (r < Role.owner or user.level == Role.owner)]

    @ui.refreshable
    async def people() -> None:
        persons = await act(auth.list_users, pass_actor=False)
        for person in persons if persons is not FAILED else []:
            with ui.row().classes('w-full items-center gap-3 border-t border-slate-100 py-2').mark(f'user-{person.email}'):
                avatar(person.name, person.initials, person.avatar_color, person.avatar_url)
                with ui.column().classes('gap-0 w-64'):
                    ui.label(person.name).classes('font-semibold')
                    ui.label(person.email).classes('text-xs text-slate-600')
                if not person.active:
                    ui.badge('deactivated', color='grey-8').props('outline')
                ui.space()
                if person.id == user.id:
                    ui.label(f'{person.role} (you)').classes('text-slate-600')
                    continue
                ui.select(grantable if person.role in grantable else [person.role, *grantable], value=person.role,
                          on_change=lambda e, p=person: change_role(p.id, e.value)).props('dense outlined') \
                    .classes('w-32')
                ui.button('Reactivate' if not person.active else 'Deactivate',
                          on_click=lambda p=person: set_active(p.id, not p.active)).props('flat dense no-caps')

    async def change_role(user_id: str, role: str) -> None:
        await act(auth.set_role, user_id, Role.parse(role), success='Role changed')
        await people.refresh()

    async def set_active(user_id: str, active: bool) -> None:
        await act(auth.set_active, user_id, active)
        await people.refresh()

    async def create_account() -> None:
        created = await act(auth.create_user, email.value, name.value, password.value, Role.parse(role.value),
                            success='Account created')
        if created is not FAILED:
            for field in (email, name, password):
                field.set_value('')
            await people.refresh()

    async def invite() -> None:
        token = await act(auth.create_invite, Role.parse(invite_role.value), invite_email.value or None)
        if token is not FAILED:
            link = f'{ui.context.client.request.base_url}invite/{token}'
            invite_link.set_value(link)
            invite_link.set_visibility(True)

    with ui.column().classes('w-full max-w-5xl mx-auto p-6 gap-4'):
        ui.label('Admin').classes('text-2xl font-bold')
        with ui.card().classes('w-full'):
            ui.label('People').classes('text-lg font-semibold')
            await people()
        with ui.row().classes('w-full gap-4 no-wrap items-stretch'):
            with ui.card().classes('w-1/2'):
                ui.label('Invite by link').classes('text-lg font-semibold')
                invite_email = ui.input('Email (optional: binds the link to it)').props('outlined').classes('w-full')
                invite_role = ui.select(grantable, value='member', label='Role').props('outlined').classes('w-full')
                ui.button('Create invite link', on_click=invite).props('unelevated color=teal-8')
                invite_link = ui.input('Link (valid 7 days, shown once)').props('outlined readonly') \
                    .classes('w-full').mark('invite-link')
                invite_link.set_visibility(False)
            with ui.card().classes('w-1/2'):
                ui.label('Create an account').classes('text-lg font-semibold')
                name = ui.input('Name').props('outlined').classes('w-full')
                email = ui.input('Email').props('outlined').classes('w-full')
                password = ui.input('Initial password', password=True).props('outlined').classes('w-full')
                role = ui.select(grantable, value='member', label='Role').props('outlined').classes('w-full')
                ui.button('Create account', on_click=create_account).props('unelevated color=teal-8')
        McpServersAdmin(settings)
        with ui.card().classes('w-full').mark('gateway'):
            await GatewayAdmin(str(ui.context.client.request.base_url)).refresh()
        warnings = [w for w in (terminals.mode_warning(settings), *unix_accounts.notes) if w]
        if warnings:
            with ui.card().classes('w-full bg-amber-50').mark('mode-warning'):
                ui.label(f'unix_user_mode: {settings.unix_user_mode}').classes('text-lg font-semibold')
                for warning in warnings:
                    ui.label(warning).classes('text-sm')
        with ui.card().classes('w-full').mark('agent-clis'):
            ui.label('Agent CLIs').classes('text-lg font-semibold')
            ui.label('Sessions run these on the server, on this Node. Pinned versions; scripts/start installs them.') \
                .classes('text-sm text-slate-600')
            rows = {}  # each CLI's row says "checking" until its `--version` answers: the list fills in as it goes
            for cli_name, label in registry.cli_labels().items():
                with ui.row().classes('w-full items-center gap-3 border-t border-slate-100 py-1') \
                        .props(f'data-cli={cli_name}'):
                    ui.label(label).classes('w-32 font-semibold')
                    with ui.row().classes('items-center gap-2 grow no-wrap') as rows[cli_name]:
                        ui.spinner(size='1em', color='teal-8')
                        ui.label('checking…').classes('text-sm text-slate-600')

            async def show_clis() -> None:
                for cli_name, row in rows.items():
                    cli = await act(registry.check, cli_name, settings.agent_cli_dir, pass_actor=False)
                    if cli is FAILED or row.is_deleted:
                        return
                    row.clear()
                    with row:
                        if cli.path:
                            ui.label(cli.version or 'version unknown: run it with --version on the server to see '
                                     'why').classes('w-56 text-sm')
                            ui.label(cli.path).classes('font-mono text-xs text-slate-600 truncate')
                        else:
                            ui.badge('not installed', color='deep-orange-10').props('outline')
                            ui.label(f'Install it with: {cli.install_command}' if cli.install_command else '') \
                                .classes('font-mono text-xs')
            ui.timer(0.1, show_clis, once=True)
        if settings.demo:
            with ui.card().classes('w-full'):
                ui.label('Demo data').classes('text-lg font-semibold')
                ui.label('Resetting restores the demo team, boards and worktrees; everything else is deleted.')

                async def reset() -> None:
                    await act(demo.reset_by, settings)
                ui.button('Reset demo', on_click=reset).props('unelevated color=orange')
