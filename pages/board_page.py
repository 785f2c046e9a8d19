"""A board: the shared canvas of zones and worktree cards, live for everyone viewing it."""
from __future__ import annotations

import json
from collections.abc import Callable
from functools import partial
from typing import Any

from nicegui import background_tasks, ui

from agor import agent_sessions, boards, comments, events, notifications, permissions, repos, triggers
from agor.config import Settings
from agor.errors import DomainError
from agor.notifications import user_topic
from agor.models import Board, Role, User

from agor.presence import presence
from components import presence_layer
from components.board_canvas import BoardCanvas
from components.comment_editor import CommentEditor
from components.comments_panel import CommentsPanel
from components.session_panel import SessionPanel
from components.facepile import Facepile
from components.presence_layer import PresenceLayer
from components.zone_trigger import ZONE_PALETTE, Toasts, picker_dialog, zone_dialog

from components.act import FAILED, act, as_current_user
from components.board_access import board_access_dialog

from .frame import header, page

CANVAS_EVENTS = {'zone', 'zone_deleted', 'card', 'card_removed'}


def register(settings: Settings) -> None:
    page('/b/{ref}', settings, title='Board · Agor')(board_page)


async def board_page(user: User, settings: Settings, ref: str, comment: str | None = None,
                     worktree: str | None = None, session: str | None = None) -> None:
    """`?comment=<id>` opens that thread and pans to it; `?worktree=<id>` pans to that card; `?session=<id>` opens
    that session."""
    try:
        board, state, threads, people = await as_current_user(_opened, ref)
    except DomainError as error:
        header(user, settings)
        ui.label(error.message).classes('p-8 text-lg')
        ui.link('Back to boards', '/').classes('px-8')
        return
    ui.page_title(f'{board.icon} {board.name} · Agor')
    header(user, settings)
    ui.query('.nicegui-content').classes('p-0')
    can_edit = user.has(Role.member)  # what to show; every action is checked as the user is then
    client = ui.context.client
    conn = client.id
    canvas = BoardCanvas(state, pins=comments.pins(threads), readonly=not can_edit) \
        .style('height: calc(100vh - 52px)').mark('board-canvas')
    view = BoardView(user, board, canvas, settings)
    view.panel = CommentsPanel(user, board, people, on_threads=view.threads_changed, on_focus=view.focus_thread)
    view.panel.threads = threads
    view.panel.render()
    view.sessions = SessionPanel(user, on_comment=lambda agent: view.comment_dialog(
        f'Comment on session “{agent["title"]}”', 'session', agent['id'], None))
    view.toasts = Toasts()

    with ui.row().classes('absolute left-4 top-[68px] items-center gap-2 bg-white rounded-xl shadow px-3 py-2'):
        view.title = ui.label(f'{board.icon} {board.name}').classes('text-lg font-semibold').mark('board-title')
        if can_edit:
            ui.button('Zone', icon='add', on_click=view.add_zone).props('flat dense no-caps').mark('add-zone')
            ui.button('Worktree', icon='add', on_click=view.add_worktree_dialog).props('flat dense no-caps') \
                .mark('add-worktree')
            ui.button('Comment', icon='add_comment', on_click=lambda: canvas.run_method('setTool', 'comment')) \
                .props('flat dense no-caps').mark('comment-tool') \
                .tooltip('Click a card, a zone or the canvas to pin a comment there')
        else:
            ui.badge('view only', color='grey').props('outline')
        ui.button(icon='lock' if board.private else 'group', on_click=lambda: board_access_dialog(board.id)) \
            .props('flat dense').tooltip('Sharing and permissions').mark('board-sharing')
        with ui.button(icon='forum', on_click=view.panel.toggle).props('flat dense no-caps').mark('comments-toggle'):
            view.open_threads = ui.badge('', color='teal').props('floating rounded')
        view.threads_changed(threads)
        facepile = Facepile(conn, user.id, lambda target: presence.follow(conn, target))
    with canvas:
        layer = PresenceLayer(conn, tuple(presence.board_snapshot(board.id)), facepile.show)

    canvas.on_card_move(view.card_moved).on_card_click(view.card_clicked) \
        .on_zone_change(view.zone_changed).on_zone_click(view.zone_clicked)
    canvas.on('comment_at', view.comment_at)
    canvas.on('session_click', lambda e: view.sessions.open(str(e.args.get('id', ''))))
    canvas.on('pin_click', lambda e: view.panel.select(str(e.args.get('id', '')), focus_canvas=False))
    canvas.on('pointer', lambda e: presence.cursor(conn, e.args.get('x'), e.args.get('y'), e.args.get('t'),
                                                   e.args.get('label', ''), e.args.get('drag')))  # paced in the browser
    canvas.on('beat', lambda e: presence.heartbeat(conn, hidden=bool(e.args.get('hidden')),
                                                   active=bool(e.args.get('active'))))
    canvas.on('viewport', lambda e: presence.set_viewport(conn, e.args.get('x'), e.args.get('y'), e.args.get('k')),
              throttle=0.1)
    canvas.on('unfollow', lambda: presence.follow(conn, None))
    view.leave_presence = join_presence(board.id, conn, user, layer, lambda: not view.revoked)
    client.on_delete(events.bus.subscribe(events.board_topic(board.id), view.on_event))
    client.on_delete(events.bus.subscribe(user_topic(user.id), view.on_user_event))
    await client.connected()
    await view.refresh_attention()
    if comment or worktree:
        await view.open_deep_link(comment, worktree)
    if session:
        await view.sessions.open(session)
    if can_edit:
        await view.ask_waiting_picks()


def _opened(actor: User, ref: str) -> tuple[Board, dict[str, Any], list[dict[str, Any]], list[dict[str, str]]]:
    """What a board page starts from, read in one trip off the event loop: the board, its canvas, threads, people."""
    board = boards.get_board(actor, ref)
    return board, boards.board_state(actor, board.id), comments.threads(actor, board.id), comments.members(actor)


def join_presence(board_id: str, conn: str, user: User, layer: PresenceLayer,
                  allowed: Callable[[], bool]) -> Callable[[], None]:
    """On the board while connected: a closed tab leaves at once, a reconnecting one comes back (while `allowed`).
    Returns how to leave for good."""
    client = layer.client
    presence_layer.attach(board_id, conn, layer)
    client.on_disconnect(lambda: presence.leave(conn))
    client.on_connect(lambda: presence.join(board_id, conn, user) if allowed() else None)

    def gone() -> None:
        presence.leave(conn)
        presence_layer.detach(board_id, conn)
    client.on_delete(gone)
    return gone


class BoardView:
    """Per-viewer handlers of one open board."""

    def __init__(self, user: User, board: Board, canvas: BoardCanvas, settings: Settings) -> None:
        self.settings = settings
        self.user_id = user.id  # who this page shows; actions go through `act`, as the user is when they act
        self.can_edit = user.has(Role.member)
        self.viewer = user  # as the page was built, for what it shows; a change of role or login reloads the page
        self.board = board
        self.canvas = canvas
        self.title: ui.label | None = None
        self.panel: CommentsPanel
        self.sessions: SessionPanel
        self.open_threads: ui.badge | None = None
        self.toasts: Toasts
        self.leave_presence: Callable[[], None] = lambda: None
        self.revoked = False
        self._attention_pending = False

    # ---- events from other viewers (and our own, echoed) -----------------------------------------------------------

    def on_event(self, event: dict[str, Any]) -> None:
        kind = event['type']
        if self.revoked:
            return
        if kind == 'access':
            self.access_changed(event)
        elif kind in CANVAS_EVENTS:
            self.canvas.apply(event)
        elif kind == 'comments':
            self.panel.reload()
        elif kind == 'attention':
            self.attention_changed()
        elif kind == 'zone_fired':
            self.zone_fired(event)
        elif kind == 'board' and self.title is not None:
            self.title.set_text(f'{event["board"]["icon"]} {event["board"]["name"]}')
        elif kind == 'board_deleted':
            with self.canvas:
                ui.notify(f'{event["by"]} deleted this board.', type='warning')
                ui.navigate.to('/')

    def access_changed(self, event: dict[str, Any]) -> None:
        """The board became private or its members changed: someone no longer on it leaves at once, and from this
        moment nothing more of the board reaches their page (agor.permissions.board_visible)."""
        self.board.private, self.board.created_by = event['private'], event['created_by']
        if permissions.board_visible(self.viewer, self.board, self.user_id in event['members']):
            return
        self.revoked = True
        self.sessions.close()
        self.leave_presence()
        with self.canvas:
            ui.navigate.to('/?left=access')

    # ---- gestures from this viewer's canvas ---------------------------------------------------------------------------

    async def card_moved(self, e: Any) -> None:
        """A drop: the server moves the card and, if it arrived in a zone with a trigger, fires it once."""
        firing = await act(triggers.drop_card, self.board.id, e.args['id'], e.args['x'], e.args['y'])
        if firing is FAILED or firing is None:
            return
        if firing['status'] == 'failed':
            ui.notify(f'The trigger of “{firing["zone"]}” did not run: {firing["error"]} The card stays in the zone.',
                      type='warning', multi_line=True, timeout=10_000)
        elif firing['status'] == 'picking':
            picker_dialog(firing)

    async def zone_changed(self, e: Any) -> None:
        changes = {k: e.args[k] for k in ('x', 'y', 'w', 'h') if k in e.args}
        if await act(boards.update_zone, e.args['id'], **changes) is FAILED:
            self._reload_zone(e.args['id'])

    async def card_clicked(self, e: Any) -> None:
        card = self.canvas.card(e.args['id'])
        if card is None:
            return
        loaded = await act(_card_dialog_data, card['id'])
        if loaded is FAILED:
            return
        details, session_items = loaded
        with ui.dialog() as dialog, ui.card().classes('w-[28rem]').mark('card-dialog'):
            ui.label(card['name']).classes('text-xl font-semibold')
            ui.label(f'⎇ {card["branch"]} · {card["repo"]}').classes('font-mono text-sm text-slate-600')
            rights = details['rights']
            ui.label(details['path']).classes('font-mono text-xs text-slate-500 break-all')
            ui.label(f'Created by {details["created_by"]} · {details["created_at"]:%Y-%m-%d %H:%M} UTC') \
                .classes('text-xs text-slate-500')
            self._details_editor(card, details)
            self._level_editor(card, rights)
            ui.label('Sessions').classes('font-semibold mt-2')

            async def open_session(session_id: str) -> None:
                dialog.close()
                await self.sessions.open(session_id)

            def new_session() -> None:
                dialog.close()
                self.sessions.new_session(card)
            for item in session_items:
                with ui.item(on_click=lambda i=item: open_session(i['id'])) \
                        .props('dense clickable').classes('w-full rounded').mark('session-item'):
                    with ui.item_section():
                        ui.item_label(item['title'])
                        ui.item_label(f'{item["runtime_label"]} · {item["status_label"]} · {item["creator"]}') \
                            .props('caption')
            if self.can_edit:
                ui.button('New session', icon='smart_toy', on_click=new_session) \
                    .props('flat no-caps color=teal').mark('new-session').set_enabled(rights['start'] is None)
                if rights['start']:
                    ui.label(rights['start']).classes('text-xs text-amber-700').mark('start-reason')
            with ui.row().classes('w-full justify-end'):
                ui.button('Terminal', icon='terminal',
                          on_click=lambda: ui.navigate.to(f'/w/{card["id"]}/terminal', new_tab=True)) \
                    .props('flat no-caps').mark('open-terminal')
                if self.can_edit:
                    async def remove() -> None:
                        if await act(boards.remove_card, self.board.id, card['id']) is not FAILED:
                            dialog.close()

                    async def archive() -> None:
                        if await act(repos.set_archived, card['id'], True,
                                     success=f'{card["name"]} archived') is not FAILED:
                            dialog.close()
                    def comment() -> None:
                        dialog.close()
                        self.comment_dialog(f'Comment on {card["name"]}', 'worktree', card['id'],
                                            self._card_corner(card))
                    ui.button('Comment', icon='add_comment', on_click=comment).props('flat no-caps')
                    for label, handler, color in (('Remove from board', remove, ''), ('Archive', archive, 'orange')):
                        ui.button(label, on_click=handler).props(f'flat no-caps color={color or "primary"}') \
                            .set_enabled(rights['edit'] is None)
                ui.button('Close', on_click=dialog.close).props('flat no-caps')
            if self.can_edit and rights['edit']:
                ui.label(rights['edit']).classes('text-xs text-amber-700').mark('edit-reason')
        dialog.open()

    def _level_editor(self, card: dict[str, Any], rights: dict[str, Any]) -> None:
        """What others may do with the worktree: its owner and admins choose; everyone sees it and their own level."""
        with ui.row().classes('w-full items-center gap-2 no-wrap'):
            level = ui.select(permissions.LEVEL_LABELS, value=rights['others_can'], label='Others may') \
                .props('outlined dense').classes('grow').mark('worktree-level')
            ui.badge(f'you: {rights["level"]}', color='teal').props('outline').mark('my-level') \
                .tooltip(permissions.LEVEL_LABELS[rights['level']])
        if rights['set_level']:
            level.disable()
            ui.label(rights['set_level']).classes('text-xs text-slate-500').mark('level-reason')
            return

        async def changed(e: Any) -> None:
            if await act(repos.set_level, card['id'], e.value, success='Permissions saved') is FAILED:
                level.set_value(rights['others_can'])
        level.on_value_change(changed)

    def _details_editor(self, card: dict[str, Any], details: dict[str, Any]) -> None:
        """Notes and the issue and pull request links: editable with `all`, read by everyone (and by templates)."""
        editable = details['rights']['edit'] is None
        with ui.expansion('Notes and links', icon='notes', value=bool(details['notes'])) \
                .classes('w-full border rounded').mark('worktree-details'):
            notes = ui.textarea('Notes', value=details['notes']).props('outlined autogrow dense').classes('w-full')
            issue = ui.input('Issue link', value=details['issue_url']).props('outlined dense').classes('w-full')
            pr = ui.input('Pull request link', value=details['pr_url']).props('outlined dense').classes('w-full')
            for field in (notes, issue, pr):
                field.set_enabled(editable)
            if editable:
                ui.button('Save notes and links', on_click=lambda: act(
                    repos.update_worktree_details, card['id'], notes=notes.value or '',
                    issue_url=issue.value or '', pr_url=pr.value or '', success='Saved')) \
                    .props('flat no-caps color=teal')

    def zone_clicked(self, e: Any) -> None:
        zone = self.canvas.zone(e.args['id'])
        if zone is not None:
            zone_dialog(self.can_edit, self.board, zone, self.canvas.props['cards'], self.sessions.open)

    # ---- zone triggers -----------------------------------------------------------------------------------------------

    def zone_fired(self, event: dict[str, Any]) -> None:
        """Every viewer hears that a trigger started a session; the toast opens it."""
        who = 'You' if event['by_id'] == self.user_id else event['by']
        with self.canvas:
            self.toasts.show(f'{who} sent {event["worktree"]} to {event["zone"]}', 'Open session',
                             lambda: self.sessions.open(event['session_id']))

    async def ask_waiting_picks(self) -> None:
        """A picker left unanswered (the tab reloaded or lost its connection) asks again."""
        waiting = await act(triggers.waiting_picks, self.board.id)
        if waiting is not FAILED and waiting:
            picker_dialog(waiting[0])

    # ---- sessions and attention -----------------------------------------------------------------------------------

    def on_user_event(self, event: dict[str, Any]) -> None:
        if event['type'] == 'attention':  # this viewer acknowledged a session (maybe in another tab)
            self.attention_changed()

    def attention_changed(self) -> None:
        """Coalesce a burst of status changes into one re-read for this viewer."""
        if not self._attention_pending:
            self._attention_pending = True
            with self.canvas:
                ui.timer(0.2, self.refresh_attention, once=True)

    async def refresh_attention(self) -> None:
        self._attention_pending = False
        with self.canvas:
            state = await act(agent_sessions.board_attention, self.board.id)
        if state is FAILED:
            return
        self.canvas.run_method('setAttention', state['cards'])
        status = 'needs' if state['sessions'] else 'running' if state['running'] else 'idle'
        title = f'{self.board.icon} {self.board.name} · Agor'
        ui.run_javascript(f'window.agorSetStatus({json.dumps(status)}, {len(state["sessions"])}, {json.dumps(title)})')

    # ---- comments ---------------------------------------------------------------------------------------------------

    def threads_changed(self, threads: list[dict[str, Any]]) -> None:
        self.canvas.set_pins(comments.pins(threads))
        if self.open_threads is not None:
            count = sum(1 for t in threads if not t['resolved'])
            self.open_threads.set_text(str(count))
            self.open_threads.set_visibility(count > 0)

    def focus_thread(self, thread: dict[str, Any]) -> None:
        if thread['pin'] is not None:
            self.canvas.run_method('focus', {'kind': 'pin', 'id': thread['id']})
        elif thread['target_type'] == 'session' and thread['target_id']:
            background_tasks.create(self.sessions.open(thread['target_id']), name='open session')
        elif thread['target_type'] in {'zone', 'worktree'}:
            kind = 'zone' if thread['target_type'] == 'zone' else 'card'
            self.canvas.run_method('focus', {'kind': kind, 'id': thread['target_id']})

    async def open_deep_link(self, comment_id: str | None, worktree_id: str | None) -> None:
        if worktree_id:
            if not await self.canvas.run_method('focus', {'kind': 'card', 'id': worktree_id}):
                ui.notify('That worktree is not on this board.', type='warning')
        if not comment_id:
            return
        place = await act(comments.locate, comment_id)
        if place is FAILED:
            return
        if place['board_id'] != self.board.id:
            ui.navigate.to(comments.link(place['slug'], comment_id))
            return
        await self.panel.select(place['thread'])
        await act(notifications.mark_read, comment_id=comment_id)

    def comment_at(self, e: Any) -> None:
        """The comment tool was clicked on the canvas: on a card, a zone, or the canvas itself."""
        x, y = e.args.get('x'), e.args.get('y')
        card = self.canvas.card(e.args.get('card') or '')
        zone = self.canvas.zone(e.args.get('zone') or '')
        if card is not None:
            self.comment_dialog(f'Comment on {card["name"]}', 'worktree', card['id'], (x, y))
        elif zone is not None:
            self.comment_dialog(f'Comment on zone “{zone["label"]}”', 'zone', zone['id'], (x, y))
        else:
            self.comment_dialog('Comment on the board', 'board', None, (x, y))

    def comment_dialog(self, title: str, target_type: str, target_id: str | None, pin: tuple[Any, Any] | None) -> None:
        with ui.dialog() as dialog, ui.card().classes('w-[28rem]').mark('comment-dialog'):
            ui.label(title).classes('text-lg font-semibold')

            async def send(text: str) -> None:
                if await self.panel.create(text, target_type=target_type, target_id=target_id, pin=pin):
                    dialog.close()
            editor = CommentEditor(self.panel.people, send, placeholder='Write a comment… (@ to mention)',
                                   submit_label='Comment', on_cancel=dialog.close).mark('comment-editor')
        dialog.on('show', editor.focus)
        dialog.open()

    # ---- toolbar --------------------------------------------------------------------------------------------------

    async def add_zone(self) -> None:
        x, y = await self._view_center()
        count = len(self.canvas.props['zones'])
        name, border, background = ZONE_PALETTE[count % len(ZONE_PALETTE)]
        await act(boards.create_zone, self.board.id, f'Zone {count + 1}', x - 240, y - 160,
                  border_color=border, background_color=background)

    async def add_worktree_dialog(self) -> None:
        listed = await act(_worktree_choices)
        if listed is FAILED:
            return
        repo_list, worktree_list = listed
        with ui.dialog() as dialog, ui.card().classes('w-[30rem]').mark('worktree-dialog'):
            ui.label('Add a worktree').classes('text-lg font-semibold')
            with ui.tabs().classes('w-full') as tabs:
                new_tab = ui.tab('New worktree')
                existing_tab = ui.tab('Existing')
            with ui.tab_panels(tabs, value=new_tab).classes('w-full'):
                with ui.tab_panel(new_tab).classes('gap-2 p-0 pt-2'):
                    repo_options = {r.id: r.name for r in repo_list}
                    if not repo_options:
                        ui.label('No repositories yet: an admin registers one under Repos.').classes('text-slate-500')
                    repo = ui.select(repo_options, label='Repository', value=next(iter(repo_options), None)) \
                        .props('outlined').classes('w-full')
                    name = ui.input('Name (e.g. auth-fix)').props('outlined').classes('w-full')
                    branch = ui.input('Branch (defaults to the name)').props('outlined').classes('w-full')
                    existing_branch = ui.checkbox('Use an existing branch')
                    base = ui.input('Start from (defaults to the repo\'s default branch)').props('outlined') \
                        .classes('w-full').bind_visibility_from(existing_branch, 'value', backward=lambda v: not v)

                    async def create() -> None:
                        worktree = await act(partial(repos.create_worktree, self.settings), repo.value or '',
                                             name.value, branch.value or None, new_branch=not existing_branch.value,
                                             base=base.value or None, board_id=self.board.id)
                        if worktree is not FAILED:
                            await self._place(worktree.id)
                            dialog.close()
                    ui.button('Create worktree', on_click=create).props('unelevated color=teal')
                with ui.tab_panel(existing_tab).classes('gap-2 p-0 pt-2'):
                    options = {w['id']: f'{w["repo"]} / {w["name"]}' + (' (on another board)' if w['board_id'] else '')
                               for w in worktree_list if w['board_id'] != self.board.id and w['level'] == 'all'}
                    choice = ui.select(options, label='Worktree').props('outlined').classes('w-full')

                    async def place() -> None:
                        if choice.value:
                            await self._place(choice.value)
                            dialog.close()
                    ui.button('Place on this board', on_click=place).props('unelevated color=teal')
        dialog.open()

    async def _place(self, worktree_id: str) -> None:
        x, y = await self._view_center()
        await act(boards.place_card, self.board.id, worktree_id, x - boards.CARD_W / 2,
                  y - boards.CARD_H / 2)

    async def _view_center(self) -> tuple[float, float]:
        center = await self.canvas.run_method('viewCenter')
        if not isinstance(center, dict):
            return 0.0, 0.0
        return float(center.get('x', 0)), float(center.get('y', 0))

    def _card_corner(self, card: dict[str, Any]) -> tuple[float, float]:
        """The canvas point of a card's top-right corner, where a comment from its dialog is pinned."""
        zone = self.canvas.zone(card['zone']) if card['zone'] else None
        return (card['x'] + (zone['x'] if zone else 0) + boards.CARD_W - 16,
                card['y'] + (zone['y'] if zone else 0) + 4)

    def _reload_zone(self, zone_id: str) -> None:
        """After a refused change, put the zone back where the server has it."""
        zone = self.canvas.zone(zone_id)
        if zone is not None:
            self.canvas.apply({'type': 'zone', 'zone': zone})


def _card_dialog_data(actor: User, worktree_id: str) -> tuple[dict[str, Any], list[dict[str, Any]]]:
    return repos.worktree_details(actor, worktree_id), agent_sessions.for_worktree(actor, worktree_id)


def _worktree_choices(actor: User) -> tuple[list[Any], list[dict[str, Any]]]:
    return repos.list_repos(), repos.list_worktrees(actor)
