"""A session's approval requests in its panel (agor.approvals): what the agent asks to run, with Allow and Deny for
those who may answer, and who answered the last few. Live: the panel hands it the session's `approval` events."""
from __future__ import annotations

from typing import Any

from nicegui import background_tasks, ui

from agor import approvals

from .act import FAILED, act


class ApprovalBox:
    def __init__(self) -> None:
        self.session_id: str | None = None
        self.shown: dict[str, dict[str, Any]] = {}
        self.root = ui.column().classes('w-full gap-2 px-4 py-2 empty:hidden').mark('approvals')

    async def load(self, session_id: str) -> None:
        self.session_id = session_id
        found = await act(approvals.for_session, session_id)
        self.shown = {a['id']: a for a in found} if found is not FAILED else {}
        self._draw()

    def apply(self, approval: dict[str, Any]) -> None:
        """A request was made or answered: `may_answer` is this viewer's, kept from the last read."""
        known = self.shown.get(approval['id'])
        may_answer = known['may_answer'] if known else None
        self.shown[approval['id']] = {**approval, 'may_answer': may_answer}
        if may_answer is None and self.session_id:  # a new request: whether this viewer may answer is read again
            background_tasks.create(self.load(self.session_id), name='approvals')
            return
        self._draw()

    def _draw(self) -> None:
        self.root.clear()
        with self.root:
            for approval in self.shown.values():
                self._row(approval)

    def _row(self, approval: dict[str, Any]) -> None:
        pending = approval['status'] == 'pending'
        with ui.card().classes('w-full p-3 gap-1 ' + ('bg-amber-50' if pending else 'bg-slate-50')) \
                .props('flat bordered').mark('approval'):
            with ui.row().classes('items-center gap-2 w-full no-wrap'):
                ui.icon('front_hand' if pending else 'task_alt', color='amber-9' if pending else 'grey-7')
                ui.label('Asks to use' if pending else approval['outcome']).classes('text-sm font-semibold') \
                    .mark('approval-status')
            ui.label(approval['summary']).classes('text-sm font-mono break-all').mark('approval-summary')
            if not pending:
                return
            if not approval.get('may_answer'):
                ui.label('Waiting for someone who may prompt this session.').classes('text-xs text-slate-600')
                return
            with ui.row().classes('gap-2'):
                ui.button('Allow', icon='check', on_click=lambda: self._decide(approval['id'], True)) \
                    .props('unelevated no-caps color=teal-8 dense').mark('approval-allow')
                ui.button('Deny', icon='block', on_click=lambda: self._decide(approval['id'], False)) \
                    .props('outline no-caps color=red-8 dense').mark('approval-deny')

    async def _decide(self, approval_id: str, allow: bool) -> None:
        decided = await act(approvals.decide, approval_id, allow)
        if decided is not FAILED:
            self.apply(decided)
