"""The comments drawer of a board: threads grouped Board -> Zones -> Worktrees -> Sessions, filters, search,
replies, reactions, resolve, edit, delete and copy-link. It re-reads the board's threads on every `comments`
event, so it is live for every viewer; reply drafts survive those refreshes."""
from __future__ import annotations

import asyncio
import json
from collections.abc import Callable
from typing import Any

from nicegui import background_tasks, ui

from agor import comments
from agor.errors import DomainError
from agor.events import BoardEvent, topic
from agor.models import Board, Role, User

from . import timestamp
from .act import FAILED, act, as_current_user
from .avatar import avatar
from .comment_editor import CommentEditor
from .listen import listen
from .side_panel import SidePanel

FILTER_LABELS = {'active': 'Active', 'resolved': 'Resolved', 'mine': 'Mine', 'mentions': 'Mentions me'}
TAB = 'comments'  # its key in the side panel
TARGET_ICONS = {'board': 'dashboard', 'zone': 'crop_free', 'worktree': 'call_split', 'session': 'smart_toy'}


class CommentsPanel:
    def __init__(self, side: SidePanel, user: User, board: Board, people: list[dict[str, str]],
                 threads: list[dict[str, Any]], *, on_threads: Callable[[list[dict[str, Any]]], None],
                 on_focus: Callable[[dict[str, Any]], None]) -> None:
        self.user_id = user.id
        self.board = board
        self.can_write = user.has(Role.member)  # what to show; every action is checked as the user is then
        self.is_admin = user.has(Role.admin)
        self.on_threads = on_threads
        self.on_focus = on_focus
        self.people = people
        self.threads = threads
        self.mode = 'active'
        self.query = ''
        self.selected: str | None = None
        self.replying: set[str] = set()
        self.editing: str | None = None
        self.drafts: dict[str, str] = {}
        self._loading: asyncio.Task | None = None
        self._again = False
        self._layout: list[tuple[str, str, list[str]]] = []
        self._drawn: dict[str, tuple[tuple, ui.column]] = {}

        self.side = side
        self.root = side.add(TAB, 'Comments', 'forum')
        with self.root, ui.column().classes('w-full h-full gap-2 p-3 no-wrap').mark('comments-panel'):
            with ui.row().classes('w-full items-center no-wrap'):
                ui.label('Comments').classes('text-lg font-semibold')
                self.count = ui.badge('0', color='teal-8').mark('comments-count')
                ui.space()
                ui.button(icon='close', on_click=self.close) \
                    .props('flat round dense aria-label="Close comments"').tooltip('Close comments')
            ui.toggle(FILTER_LABELS, value='active', on_change=lambda e: self.set_mode(e.value)) \
                .props('dense no-caps unelevated toggle-color=teal-8 size=sm').mark('comments-filter')
            ui.input(placeholder='Search comments', on_change=lambda e: self.set_query(e.value or '')) \
                .props('dense outlined clearable debounce=250').classes('w-full').mark('comments-search')
            self.body = ui.column().classes('w-full gap-3 flex-1 overflow-auto no-wrap').mark('comments-list')
            if self.can_write:
                self.new_thread = CommentEditor(self.people, self.start_board_thread,
                                                placeholder='Comment on the board…').mark('new-board-comment')
        listen(self.root, topic('board', board.id), self._on_board_event)
        self.render()

    # ---- data ----------------------------------------------------------------------------------------------------

    def _on_board_event(self, event: BoardEvent) -> None:
        if event['type'] == 'comments':
            self.reload()

    def reload(self) -> None:
        """Re-read the threads (coalesced: a burst of events costs at most two reads)."""
        if self._loading is not None and not self._loading.done():
            self._again = True
            return
        self._loading = background_tasks.create(self._load(), name='comments reload')

    async def _load(self) -> None:
        while True:
            self._again = False
            try:
                with self.root:
                    self.threads = await as_current_user(comments.threads, self.board.id)
            except DomainError:  # the board went away or the login ended; the page handles those
                return
            self.on_threads(self.threads)
            self.render()
            if not self._again:
                return

    def set_mode(self, mode: str) -> None:
        self.mode = mode
        self.render()

    def set_query(self, query: str) -> None:
        self.query = query
        self.render()

    def open(self) -> None:
        self.side.show(TAB)

    def close(self) -> None:
        self.side.hide(TAB)

    def toggle(self) -> None:
        self.side.toggle(TAB)

    async def select(self, thread_id: str, *, focus_canvas: bool = True) -> None:
        """Open the drawer on a thread (switching to the filter that shows it) and pan the canvas to it."""
        if not any(t['id'] == thread_id for t in self.threads):
            threads = await act(comments.threads, self.board.id)
            if threads is FAILED:
                return
            self.threads = threads
        thread = next((t for t in self.threads if t['id'] == thread_id), None)
        if thread is None:
            ui.notify('That comment no longer exists.', type='warning')
            return
        self.selected = thread_id
        self.mode = 'resolved' if thread['resolved'] else 'active'
        self.query = ''
        self.side.show(TAB)
        self.render()
        if focus_canvas:
            self.on_focus(thread)
        ui.run_javascript(f'setTimeout(() => document.querySelector(\'[data-thread-id="{thread_id}"]\')'
                          f'?.scrollIntoView({{block: "center", behavior: "smooth"}}), 100)')

    # ---- drawing -------------------------------------------------------------------------------------------------

    def render(self) -> None:
        """Redraw what changed. Threads whose content and state are unchanged keep their elements, so someone
        typing a reply keeps focus while others comment elsewhere on the board."""
        shown = comments.filter_threads(self.threads, self.user_id, self.mode, self.query)
        self.count.set_text(str(sum(1 for t in self.threads if not t['resolved'])))
        groups = comments.grouped(shown)
        layout = [(group, label, [t['id'] for t in threads]) for group, label, threads in groups]
        if layout == self._layout and layout:
            for thread in shown:
                if self._state(thread) != self._drawn[thread['id']][0]:
                    self._fill(self._drawn[thread['id']][1], thread)
            return
        self._layout, self._drawn = layout, {}
        self.body.clear()
        with self.body:
            if not shown:
                ui.label(self._empty_text()).classes('text-sm text-slate-600 py-6 text-center w-full')
            for group, label, threads in groups:
                with ui.row().classes('w-full items-center gap-1 mt-1'):
                    ui.label(f'{group} · {label}').classes('text-xs font-semibold uppercase text-slate-600')
                    ui.badge(str(len(threads)), color='grey-8').props('rounded')
                for thread in threads:
                    container = ui.column().classes('agor-thread w-full bg-white rounded-lg shadow-sm p-3 gap-2') \
                        .props(f'data-thread-id="{thread["id"]}"').mark('thread')
                    self._fill(container, thread)

    def _state(self, thread: dict[str, Any]) -> tuple:
        ids = {c['id'] for c in thread['comments']}
        return thread, thread['id'] == self.selected, thread['id'] in self.replying, self.editing in ids

    def _empty_text(self) -> str:
        if self.query:
            return f'No comments match “{self.query}”.'
        start = ('Press Comment (or C) and click a card, a zone or the canvas to start one.' if self.can_write else
                 'Members, admins and the owner comment here; as a viewer you read along.')
        return {'active': f'No open threads. {start}',
                'resolved': 'No resolved threads yet.', 'mine': 'You have not written in any thread here.',
                'mentions': 'Nobody has mentioned you here.'}[self.mode]

    def _fill(self, container: ui.column, thread: dict[str, Any]) -> None:
        self._drawn[thread['id']] = (self._state(thread), container)
        if thread['id'] == self.selected:
            container.classes(add='agor-selected')
        else:
            container.classes(remove='agor-selected')
        container.clear()
        with container:
            with ui.row().classes('w-full items-center gap-1 text-xs text-slate-600 no-wrap'):
                ui.button(thread['target_label'], icon=TARGET_ICONS[thread['target_type']],
                          on_click=lambda t=thread: self.on_focus(t)) \
                    .props('flat dense no-caps size=sm color=grey-9').classes('agor-thread-target min-w-0') \
                    .tooltip('Show it on the board')
                if thread['detached_from']:
                    ui.label(f'(was on {thread["detached_from"]})').classes('italic truncate')
                ui.space()
                if thread['resolved']:
                    ui.badge('Resolved', color='green-9').props('outline').tooltip(f'by {thread["resolved_by"]}')
            for entry in thread['comments']:
                self._comment(thread, entry)
            if self.can_write:
                self._thread_actions(thread)

    def _comment(self, thread: dict[str, Any], entry: dict[str, Any]) -> None:
        indent = ' pl-6' if entry['parent_id'] else ''
        with ui.column().classes('w-full gap-1' + indent).props(f'data-comment-id="{entry["id"]}"').mark('comment'):
            with ui.row().classes('w-full items-center gap-2 no-wrap'):
                avatar(entry['author'], entry['initials'], entry['color'], entry['avatar'], size='24px', tooltip=False)
                ui.label(entry['author']).classes('text-sm font-semibold truncate')
                timestamp(entry['created_at']).classes('text-xs text-slate-600')
                if entry['edited']:
                    ui.label('edited').classes('text-xs text-slate-600 italic').tooltip(entry['updated_at'])
                ui.space()
                ui.button(icon='link', on_click=lambda e=entry: self.copy_link(e['id'])) \
                    .props('flat round dense size=sm color=grey-8 aria-label="Copy link"').tooltip('Copy link') \
                    .mark('copy-link')
                self._comment_menu(thread, entry)
            if entry['deleted']:
                ui.label('deleted').classes('text-sm italic text-slate-600')
                return
            if self.editing == entry['id']:
                CommentEditor(self.people, lambda text, e=entry: self.save_edit(e['id'], text), initial=entry['body'],
                              submit_label='Save', on_cancel=self.cancel_edit).mark('edit-comment')
            else:
                ui.html(entry['html'], sanitize=False).classes('agor-comment-body text-sm break-words w-full') \
                    .mark('comment-body')  # sanitized on the server (agor.comment_text)
            if entry['reactions'] or self.can_write:
                self._reactions(entry)

    def _comment_menu(self, thread: dict[str, Any], entry: dict[str, Any]) -> None:
        """Edit and delete, for the author (and admins)."""
        if not (self.can_write and (entry['author_id'] == self.user_id or self.is_admin) and not entry['deleted']):
            return
        with ui.button(icon='more_horiz').props('flat round dense size=sm color=grey-8 aria-label="More actions"') \
                .tooltip('Edit or delete').mark('comment-menu'):
            with ui.menu():
                ui.menu_item('Edit', lambda e=entry: self.start_edit(e['id'])).mark('edit')
                ui.menu_item('Delete', lambda e=entry: self.delete(e['id'])).mark('delete')

    def _reactions(self, entry: dict[str, Any]) -> None:
        with ui.row().classes('items-center gap-1'):
            for reaction in entry['reactions']:
                mine = self.user_id in reaction['users']
                pill = ui.button(f'{reaction["emoji"]} {len(reaction["users"])}',
                                 on_click=lambda r=reaction, e=entry: self.react(e['id'], r['emoji'])) \
                    .props('flat dense no-caps size=sm').classes('agor-reaction' + (' mine' if mine else '')) \
                    .mark('reaction')
                pill.tooltip(', '.join(reaction['names']))
                if not self.can_write:
                    pill.disable()
            if self.can_write:
                with ui.button(icon='add_reaction').props('flat round dense size=sm color=grey-8 aria-label="React"') \
                        .tooltip('React').mark('react'):
                    with ui.menu(), ui.row().classes('gap-0 p-1 no-wrap'):
                        for emoji in comments.EMOJIS:
                            ui.button(emoji, on_click=lambda em=emoji, e=entry: self.react(e['id'], em)) \
                                .props('flat dense').mark(f'emoji-{emoji}')

    def _thread_actions(self, thread: dict[str, Any]) -> None:
        if thread['id'] in self.replying and not thread['comments'][0]['deleted']:
            editor = CommentEditor(self.people, lambda text, t=thread: self.reply(t['id'], text),
                                   placeholder='Reply…', submit_label='Reply',
                                   initial=self.drafts.get(thread['id'], ''),
                                   on_cancel=lambda t=thread: self.stop_reply(t['id']),
                                   on_typing=lambda text, t=thread: self.drafts.__setitem__(t['id'], text)) \
                .mark('reply-editor')
            if thread['id'] == self.selected:
                editor.focus()
            return
        with ui.row().classes('gap-1'):
            if not thread['comments'][0]['deleted']:
                ui.button('Reply', icon='reply', on_click=lambda t=thread: self.start_reply(t['id'])) \
                    .props('flat dense no-caps size=sm').mark('reply')
            if thread['resolved']:
                ui.button('Reopen', icon='replay', on_click=lambda t=thread: self.resolve(t['id'], False)) \
                    .props('flat dense no-caps size=sm').mark('reopen')
            else:
                ui.button('Resolve', icon='check', on_click=lambda t=thread: self.resolve(t['id'], True)) \
                    .props('flat dense no-caps size=sm color=green-9').mark('resolve')

    # ---- actions -------------------------------------------------------------------------------------------------

    async def start_board_thread(self, text: str) -> None:
        if await act(comments.create, self.board.id, text) is not FAILED:
            self.new_thread.clear()

    def compose(self, title: str, target_type: str, target_id: str | None, pin: tuple[Any, Any] | None) -> None:
        """A dialog that starts a thread on a target (pinned at `pin`, an absolute canvas point, if given)."""
        with ui.dialog() as dialog, ui.card().classes('w-[28rem]').mark('comment-dialog'):
            ui.label(title).classes('text-lg font-semibold')

            async def send(text: str) -> None:
                if await self.create(text, target_type=target_type, target_id=target_id, pin=pin):
                    dialog.close()
            editor = CommentEditor(self.people, send, placeholder='Write a comment… (@ to mention)',
                                   submit_label='Comment', on_cancel=dialog.close).mark('comment-editor')
        dialog.on('show', editor.focus)
        dialog.open()

    async def create(self, text: str, *, target_type: str, target_id: str | None,
                     pin: tuple[float, float] | None) -> bool:
        created = await act(comments.create, self.board.id, text, target_type=target_type,
                            target_id=target_id, pin=pin)
        if created is FAILED:
            return False
        self.selected = created.id
        self.side.show(TAB)
        return True

    def start_reply(self, thread_id: str) -> None:
        self.replying.add(thread_id)
        self.selected = thread_id
        self.render()

    def stop_reply(self, thread_id: str) -> None:
        self.replying.discard(thread_id)
        self.drafts.pop(thread_id, None)
        self.render()

    async def reply(self, thread_id: str, text: str) -> None:
        if await act(comments.reply, thread_id, text) is not FAILED:
            self.replying.discard(thread_id)
            self.drafts.pop(thread_id, None)

    def start_edit(self, comment_id: str) -> None:
        self.editing = comment_id
        self.render()

    def cancel_edit(self) -> None:
        self.editing = None
        self.render()

    async def save_edit(self, comment_id: str, text: str) -> None:
        if await act(comments.edit, comment_id, text) is not FAILED:
            self.editing = None
            self.render()

    async def delete(self, comment_id: str) -> None:
        with ui.dialog() as dialog, ui.card():
            ui.label('Delete this comment? This cannot be undone.')
            with ui.row().classes('w-full justify-end'):
                ui.button('Cancel', on_click=lambda: dialog.submit(False)).props('flat')
                ui.button('Delete', on_click=lambda: dialog.submit(True)).props('unelevated color=red-8') \
                    .mark('confirm-delete')
        if await dialog:
            await act(comments.delete, comment_id)

    async def resolve(self, thread_id: str, resolved: bool) -> None:
        await act(comments.set_resolved, thread_id, resolved)

    async def react(self, comment_id: str, emoji: str) -> None:
        await act(comments.toggle_reaction, comment_id, emoji)

    def copy_link(self, comment_id: str) -> None:
        path = comments.link(self.board.slug, comment_id)
        ui.run_javascript(f'navigator.clipboard.writeText(location.origin + {json.dumps(path)})')
        ui.notify('Link copied', type='positive')
