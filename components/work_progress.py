"""The progress of long work (a clone, a worktree's checkout) shown under the control that started it, as it happens:
the step the work is at and how far ("Receiving objects: 42 %"), with a bar. The service reports from its worker
thread (`report`, an `agor.gitops.Progress`); each report reaches the page on its event loop."""
from __future__ import annotations

import asyncio
import json
from collections.abc import Iterator
from contextlib import contextmanager

from nicegui import ui


class WorkProgress(ui.column):
    def __init__(self) -> None:
        super().__init__()
        self.classes('w-full gap-1').props('role=status')
        with self:
            self.step = ui.label().classes('text-sm text-slate-600')
            self.bar = ui.linear_progress(value=0, show_value=False).props('color=teal-8 rounded')
        self.set_visibility(False)
        self._loop: asyncio.AbstractEventLoop | None = None

    @contextmanager
    def shown(self) -> Iterator[None]:
        """Visible while the work runs (from its first report on); hidden again when it ends, however it ends."""
        self._loop = asyncio.get_running_loop()
        try:
            yield
        finally:
            self._loop = None
            if not self.is_deleted:
                self.set_visibility(False)

    def report(self, step: str, percent: int | None) -> None:
        """For any thread: show `step` and `percent` (None: a step without one, the bar moves without a figure)."""
        loop = self._loop
        if loop is not None:
            loop.call_soon_threadsafe(self._show, step, percent)

    def _show(self, step: str, percent: int | None) -> None:
        if self.is_deleted or self._loop is None:
            return
        text = step if percent is None else f'{step}: {percent} %'
        self.step.set_text(text)
        self.bar.props(f'aria-label={json.dumps(text)}')
        if percent is None:
            self.bar.props('indeterminate')
        else:
            self.bar.props(remove='indeterminate')
            self.bar.set_value(percent / 100)
        self.set_visibility(True)
