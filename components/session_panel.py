"""Sessions, open beside the board (a tab each in the side panel): the live transcript, the prompt box (prompts queue
while a run goes), stop, and follow. Opening one acknowledges it for this viewer only; so does every update while its
tab stays open.

Live updates cost what they add: a streamed entry's `append` event is sent to the browser as just the new text
(`agorAppend` in transcript_stream.js adds it as plain text); a Markdown reply is rendered once when it is complete.
"""
from __future__ import annotations

import json
import logging
from collections.abc import Callable
from functools import lru_cache
from typing import Any

from nicegui import background_tasks, ui

from agor import agent_sessions, user_secrets
from agor.events import SessionEvent, topic
from agor.models import Role, User
from agor.runtimes.base import usage_text

from . import session_mcp, timestamp
from .act import FAILED, act
from .approval_box import ApprovalBox
from .choice_dialog import choose_many
from .listen import listen
from .new_session_form import NewSessionForm
from .side_panel import SidePanel
from .transcript_html import entry_html

log = logging.getLogger('agor.ui')
STATUS_COLORS = {'idle': 'grey-8', 'running': 'blue-8', 'awaiting_permission': 'deep-orange-10',
                 'awaiting_input': 'teal-8', 'completed': 'green-9',
                 'failed': 'red-8', 'stopped': 'grey-7'}  # shades with white text at WCAG AA contrast


class SessionPanel:
    """The sessions open beside the board, one tab each in the side panel, and the new-session form in a tab of its
    own. Closing a tab ends its view: its events no longer reach this page and it no longer acknowledges."""

    def __init__(self, side: SidePanel, user: User, on_comment: Callable[[dict[str, Any]], Any]) -> None:
        self.side = side
        self.user_id = user.id
        self.can_write = user.has(Role.member)  # what to show; every action is checked as the user is then
        self.on_comment = on_comment
        self.views: dict[str, SessionView | NewSessionForm] = {}

    async def open(self, session_id: str) -> None:
        if session_id not in self.views:
            with self.side.add(session_id, 'Session', 'smart_toy', on_close=lambda: self._remove(session_id)):
                view = SessionView(self.user_id, self.can_write, on_comment=self.on_comment,
                                   on_close=lambda: self._remove(session_id),
                                   on_title=lambda title: self.side.rename(session_id, title))
            self.views[session_id] = view
            if not await view.open(session_id):
                self._remove(session_id)
                return
        self.side.show(session_id)

    async def new_session(self, worktree: dict[str, Any]) -> None:
        """The form that starts a session in a worktree; once started, the session takes its place."""
        key = f'new-{worktree["id"]}'
        if key not in self.views:
            with self.side.add(key, 'New session', 'add', on_close=lambda: self._remove(key)):
                form = NewSessionForm(worktree, on_created=lambda created: self._started(key, created),
                                      on_close=lambda: self._remove(key))
            self.views[key] = form
            if not await form.load():
                self._remove(key)
                return
        self.side.show(key)

    def close(self) -> None:
        """Close every session tab."""
        for key in list(self.views):
            self._remove(key)

    async def _started(self, key: str, session_id: str) -> None:
        await self.open(session_id)  # first: this runs in the form's Start button, which removing the form deletes
        self._remove(key)

    def _remove(self, key: str) -> None:
        view = self.views.pop(key, None)
        if isinstance(view, SessionView):
            view.stop_hearing()
        self.side.remove(key)


class SessionView:
    """One session in its tab: header, live transcript, prompt box."""

    def __init__(self, user_id: str, can_write: bool, *, on_comment: Callable[[dict[str, Any]], Any],
                 on_close: Callable[[], None], on_title: Callable[[str], None]) -> None:
        self.on_comment = on_comment
        self.on_title = on_title
        self.user_id = user_id  # who this view shows things to; actions go through `act`, as the user is then
        self.can_write = can_write
        self.session_id: str | None = None
        self.runtime = ''
        self.entries: dict[int, ui.html] = {}
        self.tail: dict[str, Any] | None = None  # the newest entry, its text as this viewer has it
        self.tail_grew = False  # it got appended text since it was drawn
        self.usage: dict[int, dict[str, Any]] = {}  # usage entry id -> its figures, for the session total
        self.total: ui.label | None = None
        self._unsubscribe: Callable[[], None] | None = None
        with ui.column().classes('w-full h-full p-0 gap-0 no-wrap').mark('session-panel') as self.root:
            with ui.row().classes('w-full items-center gap-2 px-4 py-3 border-b no-wrap'):
                self.title = ui.label().classes('text-lg font-semibold truncate flex-1').mark('session-title')
                self.status = ui.badge().mark('session-status')
                if self.can_write:
                    self.comment = ui.button(icon='add_comment', on_click=self._comment) \
                        .props('flat round dense color=grey-8 aria-label="Comment on this session"') \
                        .tooltip('Comment on this session').mark('comment-session')
                ui.button(icon='close', on_click=on_close) \
                    .props('flat round dense aria-label="Close this session"').tooltip('Close').mark('close-session')
            self.meta = ui.row().classes('w-full items-center gap-2 px-4 py-1 text-xs text-slate-600')
            self.transcript = ui.column().classes('w-full flex-1 overflow-auto gap-2 px-4 py-3 no-wrap') \
                .mark('transcript')
            self.approvals = ApprovalBox()
            self.footer = ui.column().classes('w-full gap-2 px-4 py-3 border-t')

    # ---- opening -------------------------------------------------------------------------------------------------

    async def open(self, session_id: str) -> bool:
        """Load the session (False if it cannot be shown); updates that arrive while its transcript loads are kept
        and applied after it."""
        early: list[SessionEvent] = []
        self._hear(session_id, early.append)
        detail = await act(agent_sessions.get, session_id)
        if detail is FAILED:
            self.stop_hearing()
            return False
        self.session_id = session_id
        self.runtime = detail['runtime']
        self.entries, self.tail = {}, None
        usage = await act(agent_sessions.usage, session_id)
        self.usage = usage if usage is not FAILED else {}
        self.transcript.clear()
        self._header(detail)
        self._footer(detail)
        await self.approvals.load(session_id)
        transcript = await act(agent_sessions.transcript, session_id)
        for entry in transcript if transcript is not FAILED else []:
            self._add(entry)
        self._hear(session_id, self._on_event)
        for event in early:
            self._on_event(event)
        self._scroll()
        await act(agent_sessions.acknowledge, session_id)
        return True

    def _hear(self, session_id: str, handler: Callable[[SessionEvent], None]) -> None:
        if self._unsubscribe is not None:
            self._unsubscribe()
        self._unsubscribe = listen(self.root, topic('session', session_id), handler)

    # ---- drawing -------------------------------------------------------------------------------------------------

    def _comment(self) -> None:
        if self.session_id:
            self.on_comment({'id': self.session_id, 'title': self.title.text})

    def _header(self, detail: dict[str, Any]) -> None:
        self.title.set_text(detail['title'])
        self.on_title(detail['title'])
        self.status.set_visibility(True)
        self.status.set_text(detail['status_label'])
        self.status.props(f'color={STATUS_COLORS.get(detail["status"], "grey-8")}')
        self.meta.clear()
        with self.meta:
            mine = detail['created_by'] == self.user_id
            ui.label(f'{detail["runtime_label"]} · runs as {"you" if mine else detail["creator"]}').mark('runs-as')
            if detail.get('origin'):
                ui.label(f'· from {detail["origin"]}').mark('session-origin')
            if mine and self.can_write:
                ui.button('Variables', icon='tune', on_click=lambda: self._variables(detail['id'])) \
                    .props('flat dense no-caps size=sm').tooltip('Your Session-scoped env vars for this session') \
                    .mark('session-variables')
                ui.button('MCP', icon='hub', on_click=lambda: session_mcp.choose(detail['id'])) \
                    .props('flat dense no-caps size=sm').tooltip('The MCP servers this session uses') \
                    .mark('session-mcp')
            if detail['model']:
                ui.label(f'· {detail["model"]}')
            self.total = ui.label().classes('agor-session-total').mark('session-total')
            self._show_total()
            if detail['queued']:
                ui.label(f'· {detail["queued"]} queued').mark('queued')
            ui.space()
            ui.label('Started')
            timestamp(detail['created_at'])

    async def _variables(self, session_id: str) -> None:
        """The creator picks which of their Session-scoped variables this session gets (names only)."""
        current = await act(user_secrets.session_env, session_id)
        if current is FAILED:
            return

        async def save(chosen: list[str]) -> bool:
            return await act(user_secrets.set_session_env, session_id, chosen, success='Session variables saved') \
                is not FAILED
        choose_many(title='Session variables', mark='session-variables', options=current['available'],
                    selected=current['selected'], label='This session gets', save=save,
                    empty='You have no Session-scoped variables: add one under Settings → Env Vars with the scope '
                          'Session.',
                    after=lambda: ui.label('From the next run on; your Global variables always apply.')
                    .classes('text-xs text-slate-500'))

    def _footer(self, detail: dict[str, Any]) -> None:
        self.footer.clear()
        with self.footer:  # a failed run's error is its transcript entry (once, with the details)
            if not self.can_write:
                ui.label('Viewers watch sessions; members prompt them.').classes('text-xs text-slate-600')
                return
            refused = detail['rights']['prompt']
            if refused:
                ui.label(refused).classes('text-xs text-amber-700').mark('prompt-reason')
            elif detail['created_by'] != self.user_id:
                ui.label(f'This session runs as {detail["creator"]}: your prompts run with {detail["creator"]}’s '
                         f'environment and keys, and the transcript shows them as yours.') \
                    .classes('text-xs text-slate-600').mark('runs-as-note')
            box = ui.textarea(placeholder='Prompt… (Ctrl+Enter to send; queued while a run is going)') \
                .props('outlined autogrow dense').classes('w-full').mark('prompt')

            async def send() -> None:
                if await act(agent_sessions.prompt, detail['id'], box.value or '') is not FAILED:
                    box.set_value('')
            box.on('keydown.ctrl.enter', send)
            box.set_enabled(not refused)
            with ui.row().classes('w-full items-center'):
                ui.switch('Follow', value=detail['following'],
                          on_change=lambda e: act(agent_sessions.set_following, detail['id'], e.value)) \
                    .props('dense').tooltip('Chime and notify me when a run ends').mark('follow')
                ui.space()
                ui.button('Stop', icon='stop', on_click=lambda: self.stop(detail['id'])) \
                    .props('flat no-caps color=red-8').bind_visibility_from(self.status, 'text',
                                                                          backward=lambda t: t in {'running',
                                                                                                   'stuck?',
                                                                                                   'needs approval'}) \
                    .mark('stop').set_enabled(not refused)
                ui.button('Send', icon='send', on_click=send).props('unelevated no-caps color=teal-8').mark('send') \
                    .set_enabled(not refused)

    def _show_total(self) -> None:
        """The session's total usage (the sum of its turns' own figures) in the header."""
        if self.total is not None:
            self.total.set_text(f'· total {usage_text(agent_sessions.usage_total(self.usage.values()))}'
                                if self.usage else '')

    def _entry(self, entry: dict[str, Any]) -> None:
        if entry['kind'] == 'usage':
            self.usage[entry['id']] = entry['data']
            self._show_total()
        html = entry_html(entry, preformatted=self.runtime == 'shell')
        element = self.entries.get(entry['id'])
        if element is not None:
            element.set_content(html)
            return
        with self.transcript:
            self.entries[entry['id']] = ui.html(html, sanitize=False) \
                .classes(f'agor-entry agor-entry-{entry["kind"]} w-full')  # sanitized in entry_html

    def _scroll(self) -> None:
        self.transcript.run_method('scrollTo', {'top': 10 ** 9})

    # ---- live ----------------------------------------------------------------------------------------------------

    def _on_event(self, event: SessionEvent) -> None:
        """Events may repeat what the transcript read from the database already had (they were collected from before
        that read): an entry already drawn and text already there are skipped, by id and by offset."""
        with self.transcript:
            if event['type'] == 'entry':
                if event['entry']['id'] not in self.entries:
                    self._settle_tail()
                    self._add(event['entry'])
                    self._scroll()
            elif event['type'] == 'append':
                self._append(event['entry_id'], event['at'], event['text'])
            elif event['type'] == 'approval':
                self.approvals.apply(event['approval'])
            elif event['type'] == 'session':
                detail = {**event['session'], 'following': True}
                self._header(detail)
                if self.status.text != 'running' and self.session_id:  # a settled run is seen by whoever has it open
                    self._settle_tail()
                    background_tasks.create(self._acknowledge(self.session_id), name='acknowledge session')

    async def _acknowledge(self, session_id: str) -> None:
        with self.transcript:
            await act(agent_sessions.acknowledge, session_id)

    def _add(self, entry: dict[str, Any]) -> None:
        self._entry(entry)
        if entry['data'].get('continued'):  # a long stream goes on in a new entry: drawn as one block
            self.entries[entry['id']].classes('agor-continued')
        self.tail, self.tail_grew = dict(entry), False

    def _append(self, entry_id: int, at: int, text: str) -> None:
        tail = self.tail
        if tail is None or tail['id'] != entry_id:
            return  # no longer the newest entry: all it grew by was in the transcript read from the database
        have = len(tail['text'])
        if at > have:
            log.warning('session %s: entry %s missed text %s..%s', self.session_id, entry_id, have, at)
            return
        new = text[have - at:]
        if new:
            tail['text'] += new
            self.tail_grew = True
            element = self.entries[entry_id]
            element.client.run_javascript(f'agorAppend({element.id}, {_js_string(new)})')

    def _settle_tail(self) -> None:
        """A grown Markdown reply is drawn once, complete (while it streamed its new text was shown as plain text);
        preformatted output already shows exactly its text."""
        if self.tail is not None and self.tail_grew and self.runtime != 'shell':
            self._entry(self.tail)
        self.tail_grew = False

    async def stop(self, session_id: str) -> None:
        if await act(agent_sessions.stop, session_id) is False:
            ui.notify('Nothing is running in this session.')

    def stop_hearing(self) -> None:
        """Its events no longer reach this page."""
        if self._unsubscribe is not None:
            self._unsubscribe()
            self._unsubscribe = None
        self.session_id = None


@lru_cache(maxsize=1)
def _js_string(text: str) -> str:
    """The text as a JavaScript string literal, made once for all the viewers an `append` event reaches: the bus hands
    them the event one after the other, and they share its string, whose hash Python keeps, so a repeat costs no pass
    over the text."""
    return json.dumps(text)
