"""A board: the shared canvas of zones and worktree cards, live for everyone viewing it.

The page wires components to services: the canvas, its toolbar, the comments drawer, the session panel, presence,
and the card, zone, worktree and comment dialogs. Each component hears the board's events itself
(`components.listen`); this view handles what concerns the whole page (access, the board itself, attention, zone
triggers)."""
from __future__ import annotations

import json
from typing import Any

from nicegui import background_tasks, ui

from agor import agent_sessions, boards, comments, notifications, permissions, repos, triggers
from agor.canvas import CARD_H, CARD_W
from agor.config import Settings
from agor.errors import DomainError
from agor.events import AccessChanged, BoardEvent, UserEvent, ZoneChanged, ZoneFired, topic
from agor.models import Board, Role, User
from agor.presence import presence
from components import board_icon, presence_layer
from components.act import FAILED, act, as_current_user
from components.board_access import board_access_dialog
from components.board_canvas import BoardCanvas
from components.card_dialog import open_card
from components.comments_panel import CommentsPanel
from components.facepile import Facepile
from components.listen import listen
from components.presence_layer import PresenceLayer
from components.session_panel import SessionPanel
from components.shortcuts import shortcut_sheet
from components.side_panel import SidePanel
from components.worktree_dialog import open_add_worktree
from components.zone_trigger import ZONE_PALETTE, Toasts, picker_dialog, zone_dialog

from .frame import few_big_reads_at_a_time, header, one_build_at_a_time, page


def register(settings: Settings) -> None:
    page('/b/{ref}', settings, title='Board · Agor')(board_page)


async def board_page(user: User, settings: Settings, ref: str, comment: str | None = None,
                     worktree: str | None = None, session: str | None = None) -> None:
    """`?comment=<id>` opens that thread and pans to it; `?worktree=<id>` pans to that card; `?session=<id>` opens
    that session."""
    try:
        async with few_big_reads_at_a_time():
            board, state, threads, people, has_repo = await as_current_user(_opened, ref)
    except DomainError as error:
        header(user, settings)
        ui.label(error.message).classes('p-8 text-lg')
        ui.link('Back to boards', '/').classes('px-8')
        return
    async with one_build_at_a_time():
        ui.page_title(f'{board.name} · Agor')
        header(user, settings)
        ui.query('.nicegui-content').classes('p-0')
        view = BoardView(user, board, state, threads, people, settings, has_repo=has_repo)
    await ui.context.client.connected()
    await view.start(comment, worktree, session)


def _opened(actor: User, ref: str) -> tuple[Board, dict[str, Any], list[dict[str, Any]], list[dict[str, str]], bool]:
    """What a board page starts from, read in one trip off the event loop: the board, its canvas, threads, people,
    and whether any repository is registered (an empty board says how to register one)."""
    board = boards.get_board(actor, ref)
    return (board, boards.board_state(actor, board.id), comments.threads(actor, board.id), comments.members(actor),
            bool(repos.list_repos()))


def may_edit(actor: User) -> bool:
    return actor.has(Role.member)


class BoardView:
    """Per-viewer handlers of one open board, built with everything they handle."""

    def __init__(self, user: User, board: Board, state: dict[str, Any], threads: list[dict[str, Any]],
                 people: list[dict[str, str]], settings: Settings, *, has_repo: bool) -> None:
        self.user_id = user.id  # who this page shows; actions go through `act`, as the user is when they act
        self.viewer = user  # as the page was built, for what it shows; a change of role or login reloads the page
        self.can_edit = user.has(Role.member)  # what to show; every action is checked as the user is then
        self.board = board
        self.settings = settings
        self.revoked = False
        self._attention_pending = False
        conn = ui.context.client.id
        with ui.element('div').classes('agor-board-row') as self.row:  # the canvas, and the side panel beside it
            self.canvas = BoardCanvas(board.id, state, pins=comments.pins(threads), readonly=not self.can_edit) \
                .mark('board-canvas')
            self.side = SidePanel()
            self.empty = self._empty_state(has_repo)
        self.panel = CommentsPanel(self.side, user, board, people, threads, on_threads=self.threads_changed,
                                   on_focus=self.focus_thread)
        self.sessions = SessionPanel(self.side, user, on_comment=lambda agent: self.panel.compose(
            f'Comment on session “{agent["title"]}”', 'session', agent['id'], None))
        self.toasts = Toasts()
        facepile = self._toolbar(conn)
        with self.canvas:
            layer = PresenceLayer(conn, tuple(presence.arriving(board.id, conn, user)), facepile.show)
        self._wire_canvas(conn)
        self.leave_presence = presence_layer.join(board.id, conn, user, layer, lambda: not self.revoked)
        self.threads_changed(threads)
        listen(self.canvas, topic('board', board.id), self.on_board_event)
        listen(self.canvas, topic('user', user.id), self.on_user_event)

    def _toolbar(self, conn: str) -> Facepile:
        board = self.board
        with ui.row().classes('absolute left-4 top-[68px] items-center gap-2 bg-white rounded-xl shadow px-3 py-2') \
                as self.toolbar:
            self.icon = ui.icon(board_icon(board.icon), size='24px', color='teal-8')
            self.title = ui.label(board.name).classes('text-lg font-semibold').mark('board-title')
            if self.can_edit:
                ui.button('Zone', icon='add', on_click=self.add_zone).props('flat dense no-caps').mark('add-zone')
                ui.button('Worktree', icon='add', on_click=self.add_worktree).props('flat dense no-caps') \
                    .mark('add-worktree')
                ui.button('Comment', icon='add_comment',
                          on_click=lambda: self.canvas.run_method('setTool', 'comment')) \
                    .props('flat dense no-caps').mark('comment-tool') \
                    .tooltip('Click a card, a zone or the canvas to pin a comment there')
            else:
                ui.badge('view only', color='grey-8').props('outline')
            ui.button(icon='lock' if board.private else 'group', on_click=lambda: board_access_dialog(board.id)) \
                .props('flat dense aria-label="Sharing and permissions"').tooltip('Sharing and permissions') \
                .mark('board-sharing')
            with ui.button(icon='forum', on_click=self.panel.toggle) \
                    .props('flat dense no-caps aria-label="Comments"').tooltip('Comments').mark('comments-toggle') \
                    as self.comments_button:
                self.open_threads = ui.badge('', color='teal-8').props('floating rounded')
            return Facepile(conn, self.user_id, lambda target: presence.follow(conn, target))

    def _empty_state(self, has_repo: bool) -> ui.column:
        """What an empty board offers, by role: members add a zone or a worktree (or learn how a repository is
        registered, if none is); viewers are told what they are looking at. It goes once the board has something."""
        with ui.column().classes('agor-empty absolute items-center gap-2 bg-white rounded-xl shadow p-6') \
                .mark('empty-board') as empty:
            ui.label('This board is empty.').classes('text-lg font-semibold')
            if not self.can_edit:
                ui.label('Members add zones and worktrees here; you will see them as they arrive.') \
                    .classes('text-sm text-slate-600')
            else:
                with ui.row().classes('gap-2'):
                    ui.button('+ Zone', on_click=self.add_zone).props('unelevated no-caps color=teal-8')
                    ui.button('+ Worktree', on_click=self.add_worktree).props('outline no-caps color=teal-8')
                if not has_repo:
                    with ui.row().classes('items-center gap-1 text-sm text-slate-700').mark('no-repo'):
                        ui.label('A worktree needs a repository: an admin registers one under')
                        ui.link('Repos → Register a repository', '/repos').classes('text-teal-800')
        empty.set_visibility(not (self.canvas.props['zones'] or self.canvas.props['cards']))
        return empty

    def _show_empty(self) -> None:
        self.empty.set_visibility(not (self.canvas.props['zones'] or self.canvas.props['cards']))

    def _wire_canvas(self, conn: str) -> None:
        board_canvas = self.canvas
        board_canvas.on_card_move(self.card_moved).on_card_click(self.card_clicked) \
            .on_zone_change(self.zone_changed).on_zone_click(self.zone_clicked)
        board_canvas.on('comment_at', self.comment_at)
        board_canvas.on('session_click', lambda e: self.sessions.open(str(e.args.get('id', ''))))
        board_canvas.on('pin_click', lambda e: self.panel.select(str(e.args.get('id', '')), focus_canvas=False))
        board_canvas.on('pointer', lambda e: presence.cursor(conn, e.args.get('x'), e.args.get('y'), e.args.get('t'),
                                                             e.args.get('label', ''), e.args.get('drag')))  # JS paces
        board_canvas.on('beat', lambda e: presence.heartbeat(conn, hidden=bool(e.args.get('hidden')),
                                                             active=bool(e.args.get('active'))))
        board_canvas.on('viewport', lambda e: presence.set_viewport(conn, e.args.get('x'), e.args.get('y'),
                                                                    e.args.get('k')), throttle=0.1)
        board_canvas.on('unfollow', lambda: presence.follow(conn, None))
        board_canvas.on('escape', self.side.close_top)  # Esc with nothing else to cancel: close the top panel
        board_canvas.on('shortcuts', shortcut_sheet)

    async def start(self, comment: str | None, worktree: str | None, session: str | None) -> None:
        """Once the browser is connected: the attention pulse, then what the link asked for, then a waiting picker."""
        await self.refresh_attention()
        if comment or worktree:
            await self.open_deep_link(comment, worktree)
        if session:
            await self.sessions.open(session)
        if self.can_edit:
            await self.ask_waiting_picks()

    # ---- events from other viewers (and our own, echoed); the canvas and the drawer hear theirs themselves -----------

    def on_board_event(self, event: BoardEvent) -> None:
        if event['type'] in {'zone', 'card', 'zone_deleted', 'card_removed'}:
            self._show_empty()  # the canvas heard it first: its props are the board as it is now
        elif event['type'] == 'access':
            self.access_changed(event)
        elif event['type'] == 'attention':
            self.attention_changed()
        elif event['type'] == 'zone_fired':
            self.zone_fired(event)
        elif event['type'] == 'board':
            self.icon.set_name(board_icon(event['board']['icon']))
            self.title.set_text(event['board']['name'])
        elif event['type'] == 'board_deleted':
            ui.notify(f'{event["by"]} deleted this board.', type='warning')
            ui.navigate.to('/')

    def on_user_event(self, event: UserEvent) -> None:
        if event['type'] == 'attention':  # this viewer acknowledged a session (maybe in another tab)
            self.attention_changed()

    def access_changed(self, event: AccessChanged) -> None:
        """The board became private or its members changed: someone no longer on it leaves at once, and from this
        moment nothing more of the board reaches their page (agor.permissions.board_visible): the canvas and the
        drawer, which hear the board, are deleted."""
        self.board.private, self.board.created_by = event['private'], event['created_by']
        if permissions.board_visible(self.viewer, self.board, self.user_id in event['members']):
            return
        self.revoked = True
        self.sessions.close()
        self.leave_presence()
        ui.navigate.to('/?left=access')
        self.toolbar.delete()
        self.row.delete()

    # ---- gestures from this viewer's canvas -------------------------------------------------------------------------

    async def card_moved(self, e: Any) -> None:
        await self.drop(e.args['id'], e.args['x'], e.args['y'])

    async def move_to_zone(self, card_id: str, zone_id: str) -> None:
        """"Move to zone" (for people who do not drag): a drop at the zone's centre, with the zone's rule."""
        zone = self.canvas.zone(zone_id)
        if zone is not None:
            await self.drop(card_id, zone['x'] + zone['w'] / 2 - CARD_W / 2, zone['y'] + zone['h'] / 2 - CARD_H / 2)

    async def drop(self, card_id: Any, x: Any, y: Any) -> None:
        """A drop (a drag, arrow keys, Move to zone): the server moves the card and, if it arrived in a zone with a
        trigger, fires it once."""
        firing = await act(triggers.drop_card, self.board.id, card_id, x, y)
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
        can_edit = await act(may_edit)  # as the user is now: the page may be about to reload after a demotion
        if card is None or can_edit is FAILED:
            return
        zones = {z['id']: z['label'] for z in self.canvas.props['zones'] if z['id'] != card['zone']}
        await open_card(card, board_id=self.board.id, can_edit=can_edit, on_session=self.sessions.open,
                        zones=zones, on_move=lambda zone_id: self.move_to_zone(card['id'], zone_id),
                        on_new_session=lambda: self.sessions.new_session(card),
                        on_comment=lambda: self.panel.compose(f'Comment on {card["name"]}', 'worktree', card['id'],
                                                              self._card_corner(card)))

    async def zone_clicked(self, e: Any) -> None:
        zone = self.canvas.zone(e.args['id'])
        can_edit = await act(may_edit)
        if zone is not None and can_edit is not FAILED:
            zone_dialog(can_edit, self.board, zone, self.canvas.props['cards'], self.sessions.open)

    def comment_at(self, e: Any) -> None:
        """The comment tool was clicked on the canvas: on a card, a zone, or the canvas itself."""
        x, y = e.args.get('x'), e.args.get('y')
        card = self.canvas.card(e.args.get('card') or '')
        zone = self.canvas.zone(e.args.get('zone') or '')
        if card is not None:
            self.panel.compose(f'Comment on {card["name"]}', 'worktree', card['id'], (x, y))
        elif zone is not None:
            self.panel.compose(f'Comment on zone “{zone["label"]}”', 'zone', zone['id'], (x, y))
        else:
            self.panel.compose('Comment on the board', 'board', None, (x, y))

    # ---- zone triggers -----------------------------------------------------------------------------------------------

    def zone_fired(self, event: ZoneFired) -> None:
        """Every viewer hears that a trigger started a session; the toast opens it."""
        who = 'You' if event['by_id'] == self.user_id else event['by']
        self.toasts.show(f'{who} sent {event["worktree"]} to {event["zone"]}', 'Open session',
                         lambda: self.sessions.open(event['session_id']))

    async def ask_waiting_picks(self) -> None:
        """A picker left unanswered (the tab reloaded or lost its connection) asks again."""
        waiting = await act(triggers.waiting_picks, self.board.id)
        if waiting is not FAILED and waiting:
            picker_dialog(waiting[0])

    # ---- sessions and attention -----------------------------------------------------------------------------------

    def attention_changed(self) -> None:
        """Coalesce a burst of status changes into one re-read for this viewer."""
        if not self._attention_pending:
            self._attention_pending = True
            ui.timer(0.2, self.refresh_attention, once=True)

    async def refresh_attention(self) -> None:
        self._attention_pending = False
        state = await act(agent_sessions.board_attention, self.board.id)
        if state is FAILED:
            return
        self.canvas.run_method('setAttention', state['cards'], state['reasons'])
        status = 'needs' if state['sessions'] else 'running' if state['running'] else 'idle'
        title = f'{self.board.name} · Agor'
        ui.run_javascript(f'window.agorSetStatus({json.dumps(status)}, {len(state["sessions"])}, {json.dumps(title)})')

    # ---- comments ---------------------------------------------------------------------------------------------------

    def threads_changed(self, threads: list[dict[str, Any]]) -> None:
        self.canvas.set_pins(comments.pins(threads))
        count = sum(1 for t in threads if not t['resolved'])
        self.open_threads.set_text(str(count))
        self.comments_button.props(f'aria-label="Comments: {count} open"' if count else 'aria-label="Comments"')
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

    # ---- toolbar --------------------------------------------------------------------------------------------------

    async def add_zone(self) -> None:
        x, y = await self._view_center()
        count = len(self.canvas.props['zones'])
        name, border, background = ZONE_PALETTE[count % len(ZONE_PALETTE)]
        await act(boards.create_zone, self.board.id, f'Zone {count + 1}', x - 240, y - 160,
                  border_color=border, background_color=background)

    async def add_worktree(self) -> None:
        await open_add_worktree(self.board.id, self.settings, self._place)

    async def _place(self, worktree_id: str) -> None:
        x, y = await self._view_center()
        await act(boards.place_card, self.board.id, worktree_id, x - CARD_W / 2, y - CARD_H / 2)

    async def _view_center(self) -> tuple[float, float]:
        """Where the browser's view is centred; the board's origin when it does not say within the JavaScript
        timeout (a slow connection or a loaded server), so the new zone or card is still made, or refused."""
        try:
            center = await self.canvas.run_method('viewCenter')
        except TimeoutError:
            center = None
        if not isinstance(center, dict):
            return 0.0, 0.0
        return float(center.get('x', 0)), float(center.get('y', 0))

    def _card_corner(self, card: dict[str, Any]) -> tuple[float, float]:
        """The canvas point of a card's top-right corner, where a comment from its dialog is pinned."""
        zone = self.canvas.zone(card['zone']) if card['zone'] else None
        return (card['x'] + (zone['x'] if zone else 0) + CARD_W - 16,
                card['y'] + (zone['y'] if zone else 0) + 4)

    def _reload_zone(self, zone_id: str) -> None:
        """After a refused change, put the zone back where the server has it."""
        zone = self.canvas.zone(zone_id)
        if zone is not None:
            self.canvas.apply(ZoneChanged(type='zone', zone=zone, by=''))
