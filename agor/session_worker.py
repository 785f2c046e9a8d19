"""The per-session workers: queued turns of an agent session run one at a time, as an asyncio task of this process.

A queued prompt (`prompt_queued` on `events.RUNS_TOPIC`) wakes the session's worker; the worker claims turns in order, runs the
real CLI through `agor.runtimes.cli_process` as the session's creator (the Unix account `unix_user_mode` gives them, their
merged env and their own agent home), stores the transcript as it streams (`TranscriptWriter`: one transaction per
batch of events) and settles the turn. A run stops on `stop` (a user's Stop) and on `worktree_gone` (its
worktree archived or deleted), with the reason in the transcript. `check()` is the scheduler's watchdog: it fails
runs whose process vanished, flags runs that have been silent too long, and restarts workers for queues nobody is
serving.
"""
from __future__ import annotations

import asyncio
import contextlib
import logging
from collections.abc import Awaitable, Callable
from datetime import timedelta
from pathlib import Path
from typing import Any

from . import agent_tools, credentials, db, events, mcp_servers, run_records, unix_accounts, user_secrets
from .config import Settings
from .errors import DomainError
from .models import utcnow
from .runtimes import cli_process, registry
from .runtimes.base import RunRequest, TranscriptEvent

log = logging.getLogger(__name__)
RESTART_REASON = 'interrupted by restart: the app stopped while this run was going'
VANISHED_REASON = 'the agent process ended without the app seeing it finish'
SHUTDOWN_REASON = 'Stopped: the app is shutting down.'
BATCH_SECONDS = 0.15  # transcript events are written (and sent to viewers) together at most this often
BATCH_CHARS = 64 * 1024  # a batch this big holds the run's output until it is written: a flood streams at most about
# BATCH_CHARS per BATCH_SECONDS (400 KB/s), so the sends to its viewers leave the event loop time for every other page


class TranscriptWriter:
    """A run's transcript events, written in batches: the first event of a batch starts a BATCH_SECONDS pause, then
    everything that arrived is stored in one transaction (`run_records.record_events`), in order. `close()` writes
    what is left at once; a batch whose write is under way finishes first, so nothing is lost or reordered.
    Backpressure: once a batch holds BATCH_CHARS, `add` returns an awaitable that the reader awaits (`cli_process.run`
    awaits what `on_event` returns) until that batch has been taken; output waits in the stream's buffer meanwhile (the
    CLI itself waits once 2 x LINE_LIMIT is buffered, as in a terminal). A flood then costs the event loop a bounded
    share of its time, and no single send to a viewer is huge."""

    def __init__(self, session_id: str, turn_id: str) -> None:
        self.session_id, self.turn_id = session_id, turn_id
        self.redact = user_secrets.redactor([])  # the creator's secret values become *** (set once the run is built)
        self.annotate: Callable[[TranscriptEvent], TranscriptEvent] = lambda event: event  # (whose MCP grant)
        self.pending = cli_process.EventLog()
        self._closing = asyncio.Event()
        self._taken = asyncio.Event()  # set whenever a batch is taken to be written
        self._task: asyncio.Task | None = None

    def add(self, event: TranscriptEvent) -> Awaitable[None] | None:
        self.pending.add(self.annotate(event))
        if self._task is None:
            self._task = asyncio.create_task(self._write_batches(), name=f'transcript {self.session_id}')
        return self._room() if self.pending.size >= BATCH_CHARS else None

    async def _room(self) -> None:
        while self.pending.size >= BATCH_CHARS and self._task is not None:
            self._taken.clear()
            await self._taken.wait()

    async def close(self) -> None:
        self._closing.set()
        if self._task is not None:
            await asyncio.shield(self._task)  # a shutdown's cancellation must not drop the batch being written
        await self._write()

    async def _write_batches(self) -> None:
        try:
            while self.pending:
                with contextlib.suppress(TimeoutError):
                    await asyncio.wait_for(self._closing.wait(), BATCH_SECONDS)
                await self._write()
        finally:
            self._task = None

    async def _write(self) -> None:
        redact = self.redact
        batch = [TranscriptEvent(event.kind, redact(event.text), user_secrets.redact_data(event.data, redact))
                 for event in self.pending.take()]
        self._taken.set()
        if not batch:
            return
        try:
            await asyncio.to_thread(run_records.record_events, self.session_id, self.turn_id, batch)
        except Exception:  # the run goes on; the transcript has a gap, which the log names
            log.exception('session %s: %s transcript events could not be stored', self.session_id, len(batch))


class Run:
    """A run in progress: its worktree, its process once started, and why it was asked to stop (first reason wins)."""

    def __init__(self, worktree_id: str) -> None:
        self.worktree_id = worktree_id
        self.handle: cli_process.RunHandle | None = None
        self.stop_reason: str | None = None


class SessionWorkers:
    """One worker task per agent session with a queue (started on demand), the runs in progress, and the watchdog."""

    def __init__(self, settings: Settings) -> None:
        self.settings = settings
        self.loop: asyncio.AbstractEventLoop | None = None
        self.workers: dict[str, asyncio.Task] = {}
        self.wakeups: set[str] = set()  # sessions whose queue changed since their worker last looked
        self.runs: dict[str, Run] = {}
        self._stopping: set[asyncio.Task] = set()
        self._unsubscribe: list[Any] = []

    async def start(self) -> None:
        """Called on app start (on the event loop): recover runs a previous process left, then serve queues."""
        self.loop = asyncio.get_running_loop()
        self._unsubscribe = [
            events.bus.subscribe(events.RUNS_TOPIC, self._on_run_event),
            events.bus.subscribe(events.WORKTREES_TOPIC, self._on_worktree_event)]
        for agent in await asyncio.to_thread(run_records.running_sessions):
            if agent.pid and cli_process.process_group_alive(agent.pid):  # its pipe died with the old process: stop it
                await cli_process.stop_process_group(agent.pid, grace=2)
            await asyncio.to_thread(run_records.fail_interrupted, agent.id, RESTART_REASON)
        for session_id in await asyncio.to_thread(run_records.sessions_with_queue):
            self.kick(session_id)

    async def stop_all(self) -> None:
        for unsubscribe in self._unsubscribe:
            unsubscribe()
        for session_id in list(self.runs):
            self.request_stop(session_id, SHUTDOWN_REASON, grace=2)
        await asyncio.gather(*self._stopping, return_exceptions=True)
        for task in list(self.workers.values()):
            task.cancel()

    def kick(self, session_id: str) -> None:
        """Make sure a worker serves the session's queue (safe from any thread)."""
        if self.loop is None or self.loop.is_closed():
            return
        self.loop.call_soon_threadsafe(self._ensure_worker, session_id)

    def request_stop(self, session_id: str, reason: str, *, grace: float = cli_process.STOP_GRACE_SECONDS) -> bool:
        """Stop the session's run (its whole process group; on the event loop); the turn then ends `stopped` with
        `reason` in the transcript. False when no run of it is going here."""
        run = self.runs.get(session_id)
        if run is None:
            return False
        run.stop_reason = run.stop_reason or reason
        if run.handle is not None:  # otherwise it stops as soon as it has started (on_start)
            task = asyncio.create_task(run.handle.stop(grace), name=f'stop {session_id}')
            self._stopping.add(task)
            task.add_done_callback(self._stopping.discard)
        return True

    def _on_run_event(self, event: events.RunEvent) -> None:
        if event['type'] == 'prompt_queued':
            self.kick(event['session_id'])
        elif self.loop is not None and not self.loop.is_closed():  # the bus may deliver on a publishing thread
            self.loop.call_soon_threadsafe(self.request_stop, event['session_id'], event['reason'])

    def _on_worktree_event(self, event: events.WorktreeGone) -> None:
        if event['type'] == 'worktree_gone' and self.loop is not None and not self.loop.is_closed():
            self.loop.call_soon_threadsafe(self._worktree_gone, event['worktree_id'], f'Stopped: {event["reason"]}.')

    def _worktree_gone(self, worktree_id: str, reason: str) -> None:
        for session_id, run in list(self.runs.items()):
            if run.worktree_id == worktree_id:
                self.request_stop(session_id, reason)

    def is_serving(self, session_id: str) -> bool:
        return session_id in self.workers

    # ---- watchdog (APScheduler, every few seconds) ---------------------------------------------------------------

    async def check(self) -> None:
        stuck_after = timedelta(seconds=self.settings.session_stuck_seconds)
        for agent in await asyncio.to_thread(run_records.running_sessions):
            if not self.is_serving(agent.id):
                if not (agent.pid and cli_process.process_group_alive(agent.pid)):
                    await asyncio.to_thread(run_records.fail_interrupted, agent.id, VANISHED_REASON)
                continue
            if not agent.stuck and agent.last_output_at and utcnow() - agent.last_output_at > stuck_after:
                await asyncio.to_thread(run_records.mark_stuck, agent.id)
        for session_id in await asyncio.to_thread(run_records.sessions_with_queue):
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
                claimed = await asyncio.to_thread(run_records.claim_next_turn, session_id)
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
            await asyncio.to_thread(run_records.finish_turn, agent.id, turn.id, 'stopped',
                                    error='stopped because the app is shutting down')
            raise
        except Exception:  # a bug here must not leave the session `running` forever
            log.exception('session %s: turn %s failed in its worker', agent.id, turn.id)
            await asyncio.to_thread(run_records.finish_turn, agent.id, turn.id, 'failed',
                                    error='The run failed inside Agor; see the server log.')

    async def _run_turn(self, agent: Any, turn: Any, worktree: Any, creator: Any) -> None:
        adapter = registry.get(agent.runtime)
        run = self.runs[agent.id] = Run(worktree.id)  # from here on a stop request reaches this run
        transcript = TranscriptWriter(agent.id, turn.id)

        async def on_start(handle: cli_process.RunHandle) -> None:
            asked_before, run.handle = run.stop_reason, handle
            if asked_before:  # a stop came while the process was being started
                self.request_stop(agent.id, asked_before)
            gone = await asyncio.to_thread(run_records.record_start, agent.id, handle.pid)
            if gone:  # the worktree went away before this run was there to hear it
                self.request_stop(agent.id, gone)

        try:
            try:
                mcp = await asyncio.to_thread(mcp_servers.run_servers, self.settings, agent.id, turn.id, creator)
                request = await asyncio.to_thread(self.run_request, agent, turn, worktree, creator, mcp)
            except DomainError as exc:
                await asyncio.to_thread(run_records.finish_turn, agent.id, turn.id, 'failed', error=exc.message)
                return
            transcript.redact = user_secrets.redactor(request.secrets)
            for warning in mcp.warnings:
                transcript.add(TranscriptEvent('system', warning, {'mcp_left_out': True}))
            transcript.annotate = lambda event: mcp_servers.with_grant(event, mcp, creator.name)
            request.totals_before = await asyncio.to_thread(run_records.cli_totals, agent.id)
            outcome = await cli_process.run(adapter, request, transcript.add, on_start=on_start)
        finally:
            self.runs.pop(agent.id, None)
            await transcript.close()
        error = run.stop_reason if outcome.status == 'stopped' else outcome.error
        error = transcript.redact(error) if error else error
        details = [transcript.redact(line) for line in outcome.stderr_tail] if outcome.status == 'failed' else None
        await asyncio.to_thread(run_records.finish_turn, agent.id, turn.id, outcome.status, error=error,
                                details=details, resume_id=outcome.resume_id)

    def run_request(self, agent: Any, turn: Any, worktree: Any, creator: Any,
                    mcp: mcp_servers.RunServers | None = None) -> RunRequest:
        """The turn as its creator runs it: as the Unix account unix_user_mode gives them (never root), with their
        merged env, in their own agent home (owned by that account), in a worktree that account may write, with the
        MCP servers the session selected as the creator has them (`mcp_servers.run_servers`)."""
        with db.read() as session:  # the key may have been deleted since the prompt was queued
            credentials.require_provider_key(session, registry.get(agent.runtime), creator, creator, agent.id)
        account = unix_accounts.account_for(self.settings, creator)
        cwd = Path(worktree.path)
        if cwd.is_dir():
            unix_accounts.open_worktree(account, cwd)
        extra_args = registry.get(agent.runtime).check_extra_args(list(agent.extra_args))  # as refused today
        launch = credentials.merged_env(creator, account, session_id=agent.id)
        # the app's own MCP server, acting as the creator for this turn only (agor.agent_tools); it also answers
        # permission requests in a mode that asks (agor.approvals); then the servers the session selected
        app_server, token = agent_tools.run_server(self.settings, creator.id, agent.id, turn.id)
        mcp = mcp or mcp_servers.run_servers(self.settings, agent.id, turn.id, creator)
        return RunRequest(prompt=turn.prompt, cwd=cwd, home=unix_accounts.agent_home(self.settings, creator, account),
                          env=launch.env, model=agent.model, permission_mode=agent.permission_mode,
                          extra_args=extra_args, resume_id=agent.resume_id, account=account,
                          max_retries=self.settings.agent_max_retries, cli_dir=self.settings.agent_cli_dir,
                          secrets=[*launch.secrets, token, *mcp.secrets], mcp_servers=[app_server, *mcp.servers],
                          permission_prompt=(agent_tools.SERVER_NAME, agent_tools.APPROVAL_TOOL))

