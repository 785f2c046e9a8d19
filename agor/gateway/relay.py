"""Posts what a channel's sessions do back to their threads. It runs in the runner process (`Settings.runner`),
where the runs are.

A queued prompt (`prompt_queued` on `events.RUNS_TOPIC`) of a session bound to a thread starts a watcher for it,
which hears the session's events (`session:<id>`) and, for each turn, in order: a prompt written on the board is
mirrored to the thread; one progress message is posted when the run starts and edited in place at most every
UPDATE_SECONDS; when the turn ends the message says how it ended and the answer (the turn's assistant text, and
its error) is posted in the thread, chunked by the adapter. What was posted is stored (`GatewayTurn`), so nothing
is posted twice; a watcher ends when its session has nothing left to report.
"""
from __future__ import annotations

import asyncio
import contextlib
import logging
from dataclasses import dataclass
from typing import Any

import httpx
from sqlmodel import col, select

from .. import db, events
from ..models import AgentSession, GatewayThread, GatewayTurn, SessionTurn, TranscriptEntry, User, utcnow
from ..runtimes import registry
from . import channels
from .platform import PlatformError
from .service import ADAPTERS

log = logging.getLogger(__name__)
UPDATE_SECONDS = 3.0  # the progress message is edited at most this often
QUIET_SECONDS = 0.3  # events within this are handled together
LAST_LINE = 200
ENDINGS = {'completed': 'Done', 'failed': 'Failed', 'stopped': 'Stopped'}


@dataclass
class TurnState:
    turn_id: str
    status: str
    prompt: str
    by: str
    from_chat: bool
    status_ts: str | None
    seconds: float
    answer: str = ''
    last_line: str = ''


@dataclass
class Binding:
    session_id: str
    channel_id: str
    conversation: str
    thread: str
    runtime: str


class Relay:
    """The watchers of bound sessions in this process."""

    def __init__(self) -> None:
        self.loop: asyncio.AbstractEventLoop | None = None
        self.watchers: dict[str, Watcher] = {}
        self._unsubscribe: Any = None

    async def start(self) -> None:
        self.loop = asyncio.get_running_loop()
        self._unsubscribe = events.bus.subscribe(events.RUNS_TOPIC, self._on_run_event)
        for session_id in await asyncio.to_thread(unreported_sessions):  # turns a previous process left unposted
            self.watch(session_id)

    async def stop(self) -> None:
        if self._unsubscribe:
            self._unsubscribe()
        for watcher in list(self.watchers.values()):
            await watcher.close()

    def _on_run_event(self, event: events.RunEvent) -> None:
        if event['type'] == 'prompt_queued' and self.loop is not None and not self.loop.is_closed():
            self.loop.call_soon_threadsafe(self.watch, event['session_id'])

    def watch(self, session_id: str) -> None:
        """On the loop: make sure a watcher serves the session if a thread is bound to it."""
        watcher = self.watchers.get(session_id)
        if watcher is not None:
            watcher.wake.set()
            return
        watcher = self.watchers[session_id] = Watcher(self, session_id)
        watcher.task = asyncio.create_task(watcher.run(), name=f'gateway relay {session_id}')


class Watcher:
    def __init__(self, relay: Relay, session_id: str) -> None:
        self.relay, self.session_id = relay, session_id
        self.wake = asyncio.Event()
        self.task: asyncio.Task | None = None
        self.updated: dict[str, float] = {}  # turn id -> when its progress message was last edited

    async def close(self) -> None:
        if self.task is not None:
            self.task.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await self.task

    async def run(self) -> None:
        unsubscribe = events.bus.subscribe(events.topic('session', self.session_id), lambda _: self.wake.set())
        try:
            binding = await asyncio.to_thread(binding_of, self.session_id)
            if binding is None:
                return
            channel = await asyncio.to_thread(channels.opened, binding.channel_id)
            if channel is None:
                return
            async with httpx.AsyncClient() as client:
                while True:
                    self.wake.clear()
                    if await self._report(client, channel, binding):
                        with contextlib.suppress(TimeoutError):
                            await asyncio.wait_for(self.wake.wait(), UPDATE_SECONDS)
                        await asyncio.sleep(QUIET_SECONDS)
                    elif not self.wake.is_set():  # nothing came meanwhile: leave with no await before the registry
                        return
        except Exception:
            log.exception('gateway relay for session %s failed', self.session_id)
        finally:
            unsubscribe()
            self.relay.watchers.pop(self.session_id, None)

    async def _report(self, client: httpx.AsyncClient, channel: channels.Opened, binding: Binding) -> bool:
        """Post what is new; False when the session has nothing more to report."""
        turns, queued = await asyncio.to_thread(turn_states, self.session_id)
        adapter = ADAPTERS[channel.platform]
        label = registry.get(binding.runtime).label

        async def post(text: str) -> str | None:
            try:
                return await adapter.post_message(client, channel.api_base, channel.bot_token, binding.conversation,
                                                  binding.thread, text)
            except PlatformError as error:
                log.warning('gateway %s: %s', channel.id, error)
                return None

        async def update(ts: str, text: str) -> None:
            try:
                await adapter.update_message(client, channel.api_base, channel.bot_token, binding.conversation, ts,
                                             text)
            except PlatformError as error:
                log.warning('gateway %s: %s', channel.id, error)

        for turn in turns:
            if turn.status_ts is None:
                if not turn.from_chat:
                    await post(f'{turn.by} prompted this session on the Agor board:\n' + _quote(turn.prompt))
                turn.status_ts = await post(f':hourglass_flowing_sand: {label} is working…') or ''
                await asyncio.to_thread(set_status_ts, turn.turn_id, turn.status_ts)
                self.updated[turn.turn_id] = asyncio.get_running_loop().time()
            if turn.status in ENDINGS:
                if turn.status_ts:
                    await update(turn.status_ts, f'{ENDINGS[turn.status]} after {turn.seconds:.0f} s.')
                await post(turn.answer or f'({label} gave no answer.)')
                await asyncio.to_thread(mark_reported, turn.turn_id)
                self.updated.pop(turn.turn_id, None)
            elif turn.status_ts and asyncio.get_running_loop().time() - self.updated.get(turn.turn_id, 0) >= \
                    UPDATE_SECONDS:
                line = f'\n> {turn.last_line}' if turn.last_line else ''
                await update(turn.status_ts, f':hourglass_flowing_sand: {label} is working… '
                                             f'({turn.seconds:.0f} s){line}')
                self.updated[turn.turn_id] = asyncio.get_running_loop().time()
        return bool(queued or any(turn.status not in ENDINGS for turn in turns))


# ---- what the watchers read and record ---------------------------------------------------------------------------

def binding_of(session_id: str) -> Binding | None:
    with db.read() as session:
        thread = session.exec(select(GatewayThread).where(GatewayThread.session_id == session_id)).first()
        agent = session.get(AgentSession, session_id)
        if thread is None or agent is None:
            return None
        return Binding(session_id, thread.channel_id, thread.external_channel, thread.thread_ts, agent.runtime)


def unreported_sessions() -> list[str]:
    """Bound sessions with a turn that started but whose answer was never posted."""
    with db.read() as session:
        rows = session.exec(select(SessionTurn.session_id)
                            .join(GatewayThread, col(GatewayThread.session_id) == SessionTurn.session_id)
                            .join(GatewayTurn, col(GatewayTurn.turn_id) == SessionTurn.id, isouter=True)
                            .where(SessionTurn.status != 'queued', col(GatewayTurn.reported_at).is_(None))
                            .distinct()).all()
    return list(rows)


def turn_states(session_id: str) -> tuple[list[TurnState], int]:
    """The session's started turns not reported yet, oldest first, and how many prompts wait."""
    now = utcnow()
    with db.read() as session:
        rows = session.exec(select(SessionTurn, GatewayTurn)
                            .join(GatewayTurn, col(GatewayTurn.turn_id) == SessionTurn.id, isouter=True)
                            .where(SessionTurn.session_id == session_id)
                            .order_by(col(SessionTurn.created_at))).all()
        states, queued = [], 0
        for turn, posted in rows:
            if turn.status == 'queued':
                queued += 1
                continue
            if posted is not None and posted.reported_at is not None:
                continue
            author = session.get(User, turn.created_by)
            started = turn.started_at or turn.created_at
            ended = turn.finished_at or now
            state = TurnState(turn.id, turn.status, turn.prompt, author.name if author else 'Someone',
                              bool(posted and posted.from_chat), posted.status_ts if posted else None,
                              max(0.0, (ended - started).total_seconds()))
            entries = session.exec(select(TranscriptEntry).where(TranscriptEntry.turn_id == turn.id)
                                   .order_by(col(TranscriptEntry.id))).all()
            text = ''.join(entry.text for entry in entries if entry.kind == 'assistant')
            if turn.status in ENDINGS:
                errors = [entry.text for entry in entries if entry.kind in {'error', 'system'}]
                state.answer = '\n'.join(part for part in [text.strip(), *errors] if part)
            else:
                lines = [line for line in text.splitlines() if line.strip()]
                state.last_line = lines[-1][:LAST_LINE] if lines else ''
            states.append(state)
    return states, queued


def set_status_ts(turn_id: str, status_ts: str) -> None:
    with db.transaction() as session:
        db.put(session, GatewayTurn(turn_id=turn_id, status_ts=status_ts), unique=('turn_id',),
               update=('status_ts',))


def mark_reported(turn_id: str) -> None:
    with db.transaction() as session:
        db.put(session, GatewayTurn(turn_id=turn_id, status_ts='', reported_at=utcnow()), unique=('turn_id',),
               update=('reported_at',))


def _quote(text: str) -> str:
    return '\n'.join(f'> {line}' for line in text.splitlines() or [''])

