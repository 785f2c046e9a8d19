"""Runs queued session turns, one at a time per session, as asyncio tasks of this process.

A queued prompt (the `sessions:queue` event) wakes the session's worker; the worker claims turns in order, runs the
real CLI through `agor.runtimes.runner` as the session's creator (the Unix account `unix_user_mode` gives them, their
merged env and their own agent home), stores the transcript as it streams, and settles the turn. `check()` is the scheduler's watchdog: it fails runs whose
process vanished, flags runs that have been silent too long, and restarts workers for queues nobody is serving.
"""
from __future__ import annotations

import asyncio
import logging
from datetime import timedelta
from pathlib import Path
from typing import Any

from . import credentials, events, sessions, unix_accounts
from .config import Settings
from .errors import DomainError
from .models import utcnow
from .runtimes import registry, runner
from .runtimes.base import RunRequest, TranscriptEvent

log = logging.getLogger('agor.sessions')
RESTART_REASON = 'interrupted by restart: the app stopped while this run was going'
VANISHED_REASON = 'the agent process ended without the app seeing it finish'


class SessionRunner:
    def __init__(self) -> None:
        self.settings: Settings | None = None
        self.loop: asyncio.AbstractEventLoop | None = None
        self.workers: dict[str, asyncio.Task] = {}
        self.wakeups: set[str] = set()  # sessions whose queue changed since their worker last looked
        self.handles: dict[str, runner.RunHandle] = {}
        self._unsubscribe: Any = None

    async def start(self, settings: Settings) -> None:
        """Called on app start (on the event loop): recover runs a previous process left, then serve queues."""
        self.settings = settings
        self.loop = asyncio.get_running_loop()
        self._unsubscribe = events.bus.subscribe('sessions:queue', lambda event: self.kick(event['session_id']))
        for agent in sessions.running_sessions():
            if agent.pid and runner.process_group_alive(agent.pid):  # its pipe died with the old process: stop it
                await runner.stop_process_group(agent.pid, grace=2)
            sessions.fail_interrupted(agent.id, RESTART_REASON)
        for session_id in sessions.sessions_with_queue():
            self.kick(session_id)

    async def stop_all(self) -> None:
        if self._unsubscribe:
            self._unsubscribe()
        for handle in list(self.handles.values()):
            await handle.stop(grace=2)
        for task in list(self.workers.values()):
            task.cancel()

    def kick(self, session_id: str) -> None:
        """Make sure a worker serves the session's queue (safe from any thread)."""
        if self.loop is None or self.loop.is_closed():
            return
        self.loop.call_soon_threadsafe(self._ensure_worker, session_id)

    async def stop(self, session_id: str) -> bool:
        """Stop the current run (its whole process group). False when nothing was running here."""
        handle = self.handles.get(session_id)
        if handle is None:
            return False
        await handle.stop()
        return True

    def is_serving(self, session_id: str) -> bool:
        return session_id in self.workers

    # ---- watchdog (APScheduler, every few seconds) ---------------------------------------------------------------

    async def check(self) -> None:
        assert self.settings is not None
        stuck_after = timedelta(seconds=self.settings.session_stuck_seconds)
        for agent in await asyncio.to_thread(sessions.running_sessions):
            if not self.is_serving(agent.id):
                if not (agent.pid and runner.process_group_alive(agent.pid)):
                    await asyncio.to_thread(sessions.fail_interrupted, agent.id, VANISHED_REASON)
                continue
            if not agent.stuck and agent.last_output_at and utcnow() - agent.last_output_at > stuck_after:
                await asyncio.to_thread(sessions.mark_stuck, agent.id)
        for session_id in await asyncio.to_thread(sessions.sessions_with_queue):
            self._ensure_worker(session_id)

    # ---- the worker ----------------------------------------------------------------------------------------------

    def _ensure_worker(self, session_id: str) -> None:
        """On the loop thread. A running worker is told to look again, so a prompt queued while it finds the queue
        empty is never lost: the worker checks the flag and leaves the registry with no await in between."""
        self.wakeups.add(session_id)
        if session_id not in self.workers:
            self.workers[session_id] = asyncio.create_task(self._serve(session_id), name=f'session {session_id}')

    async def _serve(self, session_id: str) -> None:
        try:
            while True:
                self.wakeups.discard(session_id)
                claimed = await asyncio.to_thread(sessions.claim_next_turn, session_id)
                if claimed is None:
                    if session_id in self.wakeups:
                        continue
                    return
                await self._run_claimed(*claimed)
        finally:
            self.workers.pop(session_id, None)

    async def _run_claimed(self, agent: Any, turn: Any, worktree: Any, creator: Any) -> None:
        try:
            await self._run_turn(agent, turn, worktree, creator)
        except asyncio.CancelledError:
            await asyncio.to_thread(sessions.finish_turn, agent.id, turn.id, 'stopped',
                                    error='stopped because the app is shutting down')
            raise
        except Exception:  # a bug here must not leave the session `running` forever
            log.exception('session %s: turn %s failed in the runner', agent.id, turn.id)
            await asyncio.to_thread(sessions.finish_turn, agent.id, turn.id, 'failed',
                                    error='The run failed inside Agor; see the server log.')

    async def _run_turn(self, agent: Any, turn: Any, worktree: Any, creator: Any) -> None:
        adapter = registry.get(agent.runtime)
        try:
            request = await asyncio.to_thread(self.run_request, agent, turn, worktree, creator)
        except DomainError as exc:
            await asyncio.to_thread(sessions.finish_turn, agent.id, turn.id, 'failed', error=exc.message)
            return
        request.totals_before = await asyncio.to_thread(sessions.cli_totals, agent.id)

        async def on_event(event: TranscriptEvent) -> None:
            await asyncio.to_thread(sessions.record_event, agent.id, turn.id, event.kind, event.text, event.data)

        async def on_start(handle: runner.RunHandle) -> None:
            self.handles[agent.id] = handle
            await asyncio.to_thread(sessions.record_start, agent.id, handle.pid)

        try:
            outcome = await runner.run(adapter, request, on_event, on_start=on_start)
        finally:
            self.handles.pop(agent.id, None)
        details = outcome.stderr_tail if outcome.status == 'failed' else None
        await asyncio.to_thread(sessions.finish_turn, agent.id, turn.id, outcome.status, error=outcome.error,
                                details=details, resume_id=outcome.resume_id)

    def run_request(self, agent: Any, turn: Any, worktree: Any, creator: Any) -> RunRequest:
        """The turn as its creator runs it: as the Unix account unix_user_mode gives them (never root), with their
        merged env, in their own agent home (owned by that account), in a worktree that account may write."""
        assert self.settings is not None
        account = unix_accounts.account_for(self.settings, creator)
        cwd = Path(worktree.path)
        if cwd.is_dir():
            unix_accounts.open_worktree(account, cwd)
        return RunRequest(prompt=turn.prompt, cwd=cwd, home=unix_accounts.agent_home(self.settings, creator, account),
                          env=credentials.merged_env(creator, account), model=agent.model,
                          permission_mode=agent.permission_mode, resume_id=agent.resume_id, account=account)


session_runner = SessionRunner()
