"""What the session worker records as a run goes (`agor.session_worker` calls these from its worker thread): the
turn it claims, the process it started, the transcript events as they stream (in batches, one transaction each), and
how the run ended, was stopped, went silent or vanished. Each write is one transaction followed by the events of
`agor.agent_sessions` (`entry`, `append`, `session`, the card's chips, `run_finished` for the chimes).
"""
from __future__ import annotations

from datetime import timedelta
from typing import Any

from sqlmodel import Session, col, select

from . import agent_sessions, approvals, db, permissions
from .events import EntryAdded, EntryAppended, RunFinished, topic
from .models import AgentSession, SessionFollow, SessionTurn, TranscriptEntry, User, Worktree, utcnow
from .models.agent_sessions import RUNNING
from .runtimes.base import TranscriptEvent

ATTENTION_AFTER = timedelta(seconds=5)  # a finished run at least this long needs a human
ENTRY_TEXT_LIMIT = 64 * 1024  # a streamed entry continues in a new one beyond this, so each write stays bounded


# ---- a run's life ----------------------------------------------------------------------------------------------------

def claim_next_turn(session_id: str) -> tuple[AgentSession, SessionTurn, Worktree, User] | None:
    """Mark the oldest queued turn running (and the session with it); None when nothing waits."""
    with db.transaction() as session:
        agent = session.get(AgentSession, session_id)
        if agent is None:
            return None
        turn = session.exec(select(SessionTurn).where(SessionTurn.session_id == agent.id,
                                                      SessionTurn.status == 'queued')
                            .order_by(col(SessionTurn.created_at))).first()
        if turn is None:
            return None
        worktree = session.get(Worktree, agent.worktree_id)
        creator = session.get(User, agent.created_by)
        assert worktree is not None and creator is not None
        if worktree.archived:  # a prompt that raced the archive
            agent_sessions.close_worktree(session, worktree)
            return None
        now = utcnow()
        turn.status, turn.started_at = 'running', now
        agent.status, agent.error, agent.stuck, agent.last_output_at = 'running', None, False, now
        agent.attention_since = agent.attention_reason = None
        by = {'by': agent_sessions.user_name(session, turn.created_by), 'by_id': turn.created_by}
        if turn.created_by != agent.created_by:  # a teammate's prompt: shown as theirs, run as the creator
            by['runs_as'] = creator.name
        _add_entry(session, agent, turn.id, 'user', turn.prompt, by)
        agent_sessions.publish_change(session, agent, None)
        return agent, turn, worktree, creator


def record_start(session_id: str, pid: int) -> str | None:
    """Note the run's process; returns why it must stop at once (its worktree went away meanwhile), else None."""
    with db.transaction() as session:
        agent = session.get(AgentSession, session_id)
        if agent is None:
            return 'Stopped: the session was deleted.'
        agent.pid = pid
        worktree = session.get(Worktree, agent.worktree_id)
        return f'Stopped: {worktree.name} is archived.' if worktree is None or worktree.archived else None


def finish_turn(session_id: str, turn_id: str, status: str, *, error: str | None = None,
                details: list[str] | None = None, resume_id: str | None = None) -> None:
    """Settle a run. With more prompts queued the session stays `running`; otherwise it lands on its new status,
    and needs a human when it awaits input or a run of 5 s or more finished. The error is one entry; `details` (the
    CLI's last stderr lines) go into its data, shown behind a toggle."""
    with db.transaction() as session:
        agent = session.get(AgentSession, session_id)
        turn = session.get(SessionTurn, turn_id)
        if agent is None or turn is None:
            return
        now = utcnow()
        turn.status, turn.finished_at, turn.error = status, now, error
        agent.pid = None
        agent.resume_id = resume_id or agent.resume_id
        approvals.cancel_pending(session, agent.id)
        if error:  # a stop says who or what stopped it, which is no error of the agent's
            kind = 'system' if status == 'stopped' else 'error'
            _add_entry(session, agent, turn.id, kind, error, {'details': details} if details else {})
        if not agent_sessions.queued_count(session, agent.id):
            new_status = status
            if status == 'completed' and agent.runtime != 'shell':  # an agent waits for the next prompt
                new_status = 'awaiting_input'
            agent.status, agent.error = new_status, error
            long_run = turn.started_at is not None and now - turn.started_at >= ATTENTION_AFTER
            if new_status == 'awaiting_input' or (new_status in {'completed', 'failed'} and long_run):
                agent.attention_since = now
        agent_sessions.publish_change(session, agent, None)
        if status in {'completed', 'failed'} and turn.started_at is not None:
            seconds = (now - turn.started_at).total_seconds()
            finished = RunFinished(type='run_finished', session_id=agent.id, turn_id=turn.id, outcome=status,
                                   seconds=round(seconds, 1), title=agent.title)
            for user_id in _audience(session, agent):
                db.emit_after_commit(session, topic('user', user_id), finished)


def mark_stuck(session_id: str) -> None:
    with db.transaction() as session:
        agent = session.get(AgentSession, session_id)
        if agent is not None and agent.status == 'running' and not agent.stuck:
            agent.stuck, agent.attention_since = True, utcnow()
            _add_entry(session, agent, None, 'system', 'No output for a while: the agent may be stuck.', {})
            agent_sessions.publish_change(session, agent, None)


def fail_interrupted(session_id: str, reason: str) -> None:
    """A run whose process is gone without its worker seeing it end (a crash, or the app restarted)."""
    with db.transaction() as session:
        agent = session.get(AgentSession, session_id)
        if agent is None or agent.status not in RUNNING:
            return
        for turn in session.exec(select(SessionTurn).where(SessionTurn.session_id == agent.id,
                                                           SessionTurn.status == 'running')):
            turn.status, turn.finished_at, turn.error = 'failed', utcnow(), reason
        agent.status, agent.error, agent.pid, agent.attention_since = 'failed', reason, None, utcnow()
        approvals.cancel_pending(session, agent.id)
        _add_entry(session, agent, None, 'error', reason, {})
        agent_sessions.publish_change(session, agent, None)


# ---- the transcript as it streams ------------------------------------------------------------------------------------

def record_events(session_id: str, turn_id: str, batch: list[TranscriptEvent]) -> None:
    """Store a batch of a run's transcript events in one transaction, in order. An assistant delta extends the
    entry it continues; beyond ENTRY_TEXT_LIMIT (at the end of a line) the text goes on in a new entry marked
    `continued`. Viewers get `entry` for each new entry (with all its text of this batch) and one `append` per grown
    entry with only the new text and the offset it goes at, so a viewer that read part of it already can skip that."""
    with db.transaction() as session:
        agent = session.get(AgentSession, session_id)
        if agent is None or not batch:
            return
        agent.last_output_at = utcnow()
        if agent.stuck:
            agent.stuck = False
            agent_sessions.publish_change(session, agent, None)
        last = session.exec(select(TranscriptEntry).where(TranscriptEntry.session_id == session_id)
                            .order_by(col(TranscriptEntry.id).desc()).limit(1)).first()
        tail = _Tail(last, new=False) if last is not None else None
        done: list[_Tail] = []
        for event in batch:
            data = {k: v for k, v in event.data.items() if k != 'delta'}
            if not (event.kind == 'assistant' and event.data.get('delta')):
                done.append(tail)
                entry = TranscriptEntry(session_id=agent.id, turn_id=turn_id, kind=event.kind, data=data)
                tail = _Tail(entry, new=True)
                tail.add(event.text)
                continue
            text = event.text
            while True:
                if tail is not None and tail.entry.kind == 'assistant' and tail.entry.turn_id == turn_id:
                    head, text = _split(text, ENTRY_TEXT_LIMIT - tail.size)
                    tail.add(head)
                    if not text:
                        break
                    data = {**data, 'continued': True}
                done.append(tail)
                tail = _Tail(TranscriptEntry(session_id=agent.id, turn_id=turn_id, kind='assistant', data=data),
                             new=True)
        for item in [*done, tail]:
            if item is None or not (item.new or item.parts):
                continue
            offset = len(item.entry.text)
            added = ''.join(item.parts)
            item.entry.text = item.entry.text + added
            session.add(item.entry)
            session.flush()
            payload = EntryAdded(type='entry', entry=agent_sessions.entry_view(item.entry)) if item.new else \
                EntryAppended(type='append', entry_id=item.entry.id, at=offset, text=added)
            db.emit_after_commit(session, topic('session', session_id), payload)


class _Tail:
    """The entry a batch is writing to: the session's newest one, or one the batch adds."""

    def __init__(self, entry: TranscriptEntry, *, new: bool) -> None:
        self.entry, self.new = entry, new
        self.parts: list[str] = []
        self.size = len(entry.text or '')

    def add(self, text: str) -> None:
        if text:
            self.parts.append(text)
            self.size += len(text)


def _split(text: str, room: int) -> tuple[str, str]:
    """`text` cut after the line that reaches `room` characters: what still fits in an entry, and the rest."""
    if len(text) <= room:
        return text, ''
    if room <= 0:
        return '', text
    cut = text.find('\n', room - 1)
    return (text, '') if cut < 0 else (text[:cut + 1], text[cut + 1:])


# ---- what the worker reads -------------------------------------------------------------------------------------------

def cli_totals(session_id: str) -> dict[str, Any] | None:
    """The totals the CLI reported with the session's last usage (see `agor.runtimes.base.Turn`)."""
    with db.read() as session:
        data = session.exec(select(TranscriptEntry.data).where(
            TranscriptEntry.session_id == session_id, TranscriptEntry.kind == 'usage')
            .order_by(col(TranscriptEntry.id).desc())).first()
    return (data or {}).get('totals')


def running_sessions() -> list[AgentSession]:
    with db.read() as session:
        return list(session.exec(select(AgentSession).where(col(AgentSession.status).in_(RUNNING))))


def sessions_with_queue() -> list[str]:
    with db.read() as session:
        return list(session.exec(select(SessionTurn.session_id).where(SessionTurn.status == 'queued').distinct()))


# ---- helpers ---------------------------------------------------------------------------------------------------------

def _add_entry(session: Session, agent: AgentSession, turn_id: str | None, kind: str, text: str,
               data: dict[str, Any]) -> None:
    entry = TranscriptEntry(session_id=agent.id, turn_id=turn_id, kind=kind, text=text, data=data)
    session.add(entry)
    session.flush()
    db.emit_after_commit(session, topic('session', agent.id),
                         EntryAdded(type='entry', entry=agent_sessions.entry_view(entry)))


def _audience(session: Session, agent: AgentSession) -> list[str]:
    """The creator and followers who can still see the session's worktree."""
    followers = session.exec(select(SessionFollow.user_id).where(SessionFollow.session_id == agent.id)).all()
    worktree = session.get(Worktree, agent.worktree_id)
    people = [session.get(User, user_id) for user_id in dict.fromkeys([agent.created_by, *followers])]
    return [p.id for p in people if p is not None and worktree is not None
            and permissions.worktree_level(session, p, worktree) is not None]
