"""Agent sessions: create, prompt (queued), stop, read the transcript, and per-viewer attention.

The runs themselves happen in `agor.session_worker`; this module is the state they move through. Every change is
one transaction followed by events: `session:<id>` for whoever has the session open (`entry` for a new transcript
entry, `append` with only the text a streamed entry grew by, `session` for its summary), the board's `card` event
for the chips on the worktree card, and `user:<id>` (`run_finished`) for the creator's and followers' chimes. The
runner hears `runs` (`prompt_queued`: a prompt waits; `stop`: stop the run, with who stopped it). The payloads are
the typed dicts of `agor.events`.
"""
from __future__ import annotations

from datetime import timedelta
from typing import Any

from sqlalchemy import delete, func
from sqlmodel import Session, col, select

from . import canvas, credentials, db, ids, mcp_servers, permissions, runtime_settings
from .auth import require
from .errors import InvalidInput, NotFound
from .models import (AgentSession, CardPlacement, Role, SessionAck, SessionFollow, SessionTurn, TranscriptEntry,
                     User, Worktree, utcnow)
from .events import (RUNS_TOPIC, AttentionChanged, EntryAdded, EntryAppended, PromptQueued, RunFinished,
                     SessionChanged, StopRequested, topic)
from .runtimes import registry
from .runtime_settings import check_mode, clean_model
from .runtimes.base import TranscriptEvent

ATTENTION_AFTER = timedelta(seconds=5)  # a finished run at least this long needs a human
MAX_PROMPT_BYTES = 100 * 1024
TRANSCRIPT_PAGE = 2000
ENTRY_TEXT_LIMIT = 64 * 1024  # a streamed entry continues in a new one beyond this, so each write stays bounded


# ---- what users do ---------------------------------------------------------------------------------------------------

def create(actor: User, worktree_id: str, runtime: str, prompt: str | None = None, *, model: str | None = None,
           permission_mode: str | None = None, mcp_server_ids: list[str] | None = None) -> AgentSession:
    """A new session in the worktree, run as `actor`; with a prompt its first turn is queued at once (with the MCP
    servers it selected: chosen in the same transaction)."""
    require(actor, Role.member, 'start sessions')
    text = _clean_prompt(prompt) if prompt is not None else None
    with db.transaction() as session:
        worktree = ids.resolve(session, Worktree, worktree_id, 'worktree')
        agent = add(session, actor, worktree, runtime, text, model=model, permission_mode=permission_mode)
        if mcp_server_ids:
            mcp_servers.choose(session, agent.id, mcp_server_ids)
        return agent


def prompt(actor: User, session_id: str, text: str) -> SessionTurn:
    """Queue a prompt; it runs when the session's current run (if any) ends."""
    require(actor, Role.member, 'prompt sessions')
    body = _clean_prompt(text)
    with db.transaction() as session:
        return queue_prompt(session, actor, _session(session, session_id), body)


def add(session: Session, actor: User, worktree: Worktree, runtime: str, text: str | None, *,
        model: str | None = None, permission_mode: str | None = None) -> AgentSession:
    """`create` inside the caller's transaction (a zone trigger starts its session in the drop's transaction)."""
    adapter = registry.get(runtime)
    check_mode(adapter, permission_mode)
    model = clean_model(model)
    if worktree.archived:
        raise InvalidInput(f'{worktree.name} is archived: restore it to start a session.')
    permissions.require_worktree(session, actor, worktree, permissions.Level.session, 'start sessions in it')
    mine = runtime_settings.defaults(session, actor.id, adapter.name)  # the creator's, for what the form left open
    agent = AgentSession(worktree_id=worktree.id, created_by=actor.id, runtime=adapter.name,
                         title=_title(text) if text else f'{adapter.label} session', model=model or mine.model,
                         permission_mode=permission_mode or mine.permission_mode, extra_args=list(mine.extra_args))
    session.add(agent)
    session.flush()
    if text:
        credentials.require_provider_key(session, adapter, actor, actor, agent.id)
        _queue(session, agent, actor, text)
    _changed(session, agent, actor)
    return agent


def queue_prompt(session: Session, actor: User, agent: AgentSession, text: str) -> SessionTurn:
    """`prompt` inside the caller's transaction. Someone else's session needs the `prompt` level; it still runs as
    its creator, and the transcript shows who prompted it."""
    permissions.require_session(session, actor, agent, 'prompt')
    worktree = session.get(Worktree, agent.worktree_id)
    if worktree is None or worktree.archived:
        name = worktree.name if worktree else 'Its worktree'
        raise InvalidInput(f'{name} is archived: restore it to prompt this session.')
    creator = session.get(User, agent.created_by)
    if creator is not None:  # before anything is queued: the run would have no provider key
        credentials.require_provider_key(session, registry.get(agent.runtime), creator, actor, agent.id)
    turn = _queue(session, agent, actor, text)
    _changed(session, agent, actor)
    return turn


def stop(actor: User, session_id: str) -> bool:
    """Stop means stop: the prompts still waiting are dropped, and its worker stops the current run (its whole
    process group), which then ends with "Stopped by <actor>." in the transcript. False when nothing was running."""
    require(actor, Role.member, 'stop sessions')
    with db.transaction() as session:
        agent = _session(session, session_id)
        permissions.require_session(session, actor, agent, 'stop')
        if _drop_queue(session, agent):
            _changed(session, agent, actor)
        if agent.status != 'running':
            return False
        db.emit_after_commit(session, RUNS_TOPIC, StopRequested(type='stop', session_id=agent.id,
                                                                reason=f'Stopped by {actor.name}.'))
        return True


def close_worktree(session: Session, worktree: Worktree) -> None:
    """The worktree is being archived or deleted (in the caller's transaction): its sessions' queued prompts are
    dropped; their workers stop their runs when it hears `worktree_gone` after the commit."""
    for agent in session.exec(select(AgentSession).where(AgentSession.worktree_id == worktree.id)):
        if _drop_queue(session, agent):
            _changed(session, agent, None)


def acknowledge(user: User, session_id: str) -> None:
    """The viewer has looked at the session: their pulse for it stops (nobody else's)."""
    with db.transaction() as session:
        agent = _visible(session, user, session_id)
        db.put(session, SessionAck(user_id=user.id, session_id=agent.id), unique=('user_id', 'session_id'),
               update=('seen_at',))
        db.emit_after_commit(session, topic('user', user.id), AttentionChanged(type='attention', session_id=agent.id))


def set_following(user: User, session_id: str, follow: bool) -> None:
    require(user, Role.viewer, 'follow sessions')
    with db.transaction() as session:
        agent = _visible(session, user, session_id)
        if follow:
            db.put(session, SessionFollow(user_id=user.id, session_id=agent.id), unique=('user_id', 'session_id'))
        else:
            session.execute(delete(SessionFollow).where(col(SessionFollow.user_id) == user.id,
                                                        col(SessionFollow.session_id) == agent.id))


# ---- reads -----------------------------------------------------------------------------------------------------------

def get(user: User, session_id: str) -> dict[str, Any]:
    require(user, Role.viewer, 'read sessions')
    with db.read() as session:
        agent = _visible(session, user, session_id)
        return _detail(session, agent, user)


def for_worktree(user: User, worktree_id: str) -> list[dict[str, Any]]:
    require(user, Role.viewer, 'read sessions')
    with db.read() as session:
        worktree = ids.load(session, Worktree, worktree_id, 'worktree')
        permissions.require_worktree(session, user, worktree, permissions.Level.view, 'see its sessions')
        agents = session.exec(select(AgentSession).where(AgentSession.worktree_id == worktree.id)
                              .order_by(col(AgentSession.created_at).desc())).all()
        return [_detail(session, a, user) for a in agents]


def transcript(user: User, session_id: str) -> list[dict[str, Any]]:
    """The newest TRANSCRIPT_PAGE entries, oldest first."""
    require(user, Role.viewer, 'read sessions')
    with db.read() as session:
        _visible(session, user, session_id)
        entries = session.exec(select(TranscriptEntry).where(TranscriptEntry.session_id == session_id)
                               .order_by(col(TranscriptEntry.id).desc()).limit(TRANSCRIPT_PAGE)).all()
    return [entry_view(e) for e in reversed(entries)]


def usage(user: User, session_id: str) -> dict[int, dict[str, Any]]:
    """Every usage entry of the session (entry id -> its figures), for the session total."""
    require(user, Role.viewer, 'read sessions')
    with db.read() as session:
        rows = session.exec(select(TranscriptEntry.id, TranscriptEntry.data).where(
            TranscriptEntry.session_id == session_id, TranscriptEntry.kind == 'usage')).all()
    return {entry_id: data for entry_id, data in rows}


def usage_total(figures: Any) -> dict[str, float]:
    """The sum of turns' usage figures (`input_tokens`, `output_tokens`, `cost_usd`)."""
    total = {'input_tokens': 0, 'output_tokens': 0, 'cost_usd': 0.0}
    for data in figures:
        for key in total:
            value = data.get(key)
            total[key] += value if isinstance(value, (int, float)) else 0
    return total


def board_attention(user: User, board_id: str) -> dict[str, Any]:
    """For one viewer of a board: the cards that need them, and whether anything is running (favicon + title)."""
    with db.read() as session:
        permissions.visible_board(session, user, board_id)
        rows = session.exec(
            select(AgentSession, SessionAck.seen_at)
            .join(CardPlacement, col(CardPlacement.worktree_id) == AgentSession.worktree_id)
            .join(SessionAck, (col(SessionAck.session_id) == AgentSession.id) & (col(SessionAck.user_id) == user.id),
                  isouter=True)
            .where(CardPlacement.board_id == board_id)).all()
    needs = [a for a, seen in rows if a.attention_since and (seen is None or seen < a.attention_since)]
    return {'cards': sorted({a.worktree_id for a in needs}), 'sessions': sorted(a.id for a in needs),
            'running': any(a.status == 'running' for a, _ in rows)}


def entry_view(entry: TranscriptEntry) -> dict[str, Any]:
    return {'id': entry.id, 'turn_id': entry.turn_id, 'kind': entry.kind, 'text': entry.text, 'data': entry.data,
            'created_at': entry.created_at.isoformat()}


# ---- what the worker records -----------------------------------------------------------------------------------------

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
            close_worktree(session, worktree)
            return None
        now = utcnow()
        turn.status, turn.started_at = 'running', now
        agent.status, agent.error, agent.stuck, agent.last_output_at = 'running', None, False, now
        agent.attention_since = None
        by = {'by': _user_name(session, turn.created_by), 'by_id': turn.created_by}
        if turn.created_by != agent.created_by:  # a teammate's prompt: shown as theirs, run as the creator
            by['runs_as'] = creator.name
        _add_entry(session, agent, turn.id, 'user', turn.prompt, by)
        _changed(session, agent, None)
        return agent, turn, worktree, creator


def cli_totals(session_id: str) -> dict[str, Any] | None:
    """The totals the CLI reported with the session's last usage (see `agor.runtimes.base.Turn`)."""
    with db.read() as session:
        data = session.exec(select(TranscriptEntry.data).where(
            TranscriptEntry.session_id == session_id, TranscriptEntry.kind == 'usage')
            .order_by(col(TranscriptEntry.id).desc())).first()
    return (data or {}).get('totals')


def record_start(session_id: str, pid: int) -> str | None:
    """Note the run's process; returns why it must stop at once (its worktree went away meanwhile), else None."""
    with db.transaction() as session:
        agent = session.get(AgentSession, session_id)
        if agent is None:
            return 'Stopped: the session was deleted.'
        agent.pid = pid
        worktree = session.get(Worktree, agent.worktree_id)
        return f'Stopped: {worktree.name} is archived.' if worktree is None or worktree.archived else None


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
            _changed(session, agent, None)
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
            payload = EntryAdded(type='entry', entry=entry_view(item.entry)) if item.new else \
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
        if error:  # a stop says who or what stopped it, which is no error of the agent's
            kind = 'system' if status == 'stopped' else 'error'
            _add_entry(session, agent, turn.id, kind, error, {'details': details} if details else {})
        if not _queued_count(session, agent.id):
            new_status = status
            if status == 'completed' and agent.runtime != 'shell':  # an agent waits for the next prompt
                new_status = 'awaiting_input'
            agent.status, agent.error = new_status, error
            long_run = turn.started_at is not None and now - turn.started_at >= ATTENTION_AFTER
            if new_status == 'awaiting_input' or (new_status in {'completed', 'failed'} and long_run):
                agent.attention_since = now
        _changed(session, agent, None)
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
            _changed(session, agent, None)


def fail_interrupted(session_id: str, reason: str) -> None:
    """A run whose process is gone without its worker seeing it end (a crash, or the app restarted)."""
    with db.transaction() as session:
        agent = session.get(AgentSession, session_id)
        if agent is None or agent.status != 'running':
            return
        for turn in session.exec(select(SessionTurn).where(SessionTurn.session_id == agent.id,
                                                           SessionTurn.status == 'running')):
            turn.status, turn.finished_at, turn.error = 'failed', utcnow(), reason
        agent.status, agent.error, agent.pid, agent.attention_since = 'failed', reason, None, utcnow()
        _add_entry(session, agent, None, 'error', reason, {})
        _changed(session, agent, None)


def running_sessions() -> list[AgentSession]:
    with db.read() as session:
        return list(session.exec(select(AgentSession).where(AgentSession.status == 'running')))


def sessions_with_queue() -> list[str]:
    with db.read() as session:
        return list(session.exec(select(SessionTurn.session_id).where(SessionTurn.status == 'queued').distinct()))


# ---- helpers ---------------------------------------------------------------------------------------------------------

def _queue(session: Session, agent: AgentSession, actor: User, text: str) -> SessionTurn:
    turn = SessionTurn(session_id=agent.id, created_by=actor.id, prompt=text)
    session.add(turn)
    session.flush()
    db.emit_after_commit(session, RUNS_TOPIC, PromptQueued(type='prompt_queued', session_id=agent.id))
    return turn


def _drop_queue(session: Session, agent: AgentSession) -> int:
    queued = session.exec(select(SessionTurn).where(SessionTurn.session_id == agent.id,
                                                    SessionTurn.status == 'queued')).all()
    for turn in queued:
        turn.status, turn.finished_at = 'stopped', utcnow()
    return len(queued)


def _add_entry(session: Session, agent: AgentSession, turn_id: str | None, kind: str, text: str,
               data: dict[str, Any]) -> None:
    entry = TranscriptEntry(session_id=agent.id, turn_id=turn_id, kind=kind, text=text, data=data)
    session.add(entry)
    session.flush()
    db.emit_after_commit(session, topic('session', agent.id), EntryAdded(type='entry', entry=entry_view(entry)))


def _changed(session: Session, agent: AgentSession, actor: User | None) -> None:
    agent.updated_at = utcnow()
    session.flush()
    db.emit_after_commit(session, topic('session', agent.id),
                         SessionChanged(type='session', session=_summary(session, agent)))
    placement = session.exec(select(CardPlacement).where(CardPlacement.worktree_id == agent.worktree_id)).first()
    if placement is not None:
        canvas.emit_card(session, placement, actor)
        db.emit_after_commit(session, topic('board', placement.board_id),
                             AttentionChanged(type='attention', session_id=agent.id))


def _summary(session: Session, agent: AgentSession) -> dict[str, Any]:
    queued = _queued_count(session, agent.id)
    adapter = registry.get(agent.runtime)
    return {'id': agent.id, 'worktree_id': agent.worktree_id, 'runtime': agent.runtime, 'runtime_label': adapter.label,
            'title': agent.title, 'status': agent.status, 'status_label': canvas.status_label(agent),
            'error': agent.error, 'stuck': agent.stuck, 'queued': queued, 'created_by': agent.created_by,
            'creator': _user_name(session, agent.created_by), 'model': agent.model,
            'created_at': agent.created_at.isoformat(), 'updated_at': agent.updated_at.isoformat()}


def _queued_count(session: Session, session_id: str) -> int:
    return session.exec(select(func.count()).select_from(SessionTurn).where(
        SessionTurn.session_id == session_id, SessionTurn.status == 'queued')).one()


def _detail(session: Session, agent: AgentSession, user: User) -> dict[str, Any]:
    following = session.exec(select(SessionFollow).where(SessionFollow.user_id == user.id,
                                                         SessionFollow.session_id == agent.id)).first()
    return {**_summary(session, agent), 'following': following is not None or agent.created_by == user.id,
            'rights': permissions.session_rights(session, user, agent)}


def _audience(session: Session, agent: AgentSession) -> list[str]:
    """The creator and followers who can still see the session's worktree."""
    followers = session.exec(select(SessionFollow.user_id).where(SessionFollow.session_id == agent.id)).all()
    worktree = session.get(Worktree, agent.worktree_id)
    people = [session.get(User, user_id) for user_id in dict.fromkeys([agent.created_by, *followers])]
    return [p.id for p in people if p is not None and worktree is not None
            and permissions.worktree_level(session, p, worktree) is not None]


def _user_name(session: Session, user_id: str) -> str:
    user = session.get(User, user_id)
    return user.name if user else 'Former member'


def _title(prompt: str) -> str:
    line = ' '.join(prompt.split())
    return line if len(line) <= 80 else line[:79] + '…'


def _clean_prompt(text: Any) -> str:
    if not isinstance(text, str) or not text.strip():
        raise InvalidInput('Write a prompt first.')
    if len(text.encode()) > MAX_PROMPT_BYTES:
        raise InvalidInput('A prompt is limited to 100 KB.')
    return text.strip()


def _session(session: Session, session_id: Any) -> AgentSession:
    return ids.load(session, AgentSession, session_id, 'session')


def _visible(session: Session, user: User, session_id: Any) -> AgentSession:
    """The session, if its worktree exists for the user (agor.permissions); else as if it did not exist."""
    agent = _session(session, session_id)
    worktree = session.get(Worktree, agent.worktree_id)
    if worktree is None or permissions.worktree_level(session, user, worktree) is None:
        raise NotFound('That session no longer exists.')
    return agent
