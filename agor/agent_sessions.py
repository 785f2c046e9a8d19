"""Agent sessions, the service users act through: create, prompt (queued), stop, follow, read the transcript, and
per-viewer attention.

The runs themselves happen in `agor.session_worker`, which writes what they record through `agor.run_records`; this
module is the state they move through. Every change is
one transaction followed by events: `session:<id>` for whoever has the session open (`entry` for a new transcript
entry, `append` with only the text a streamed entry grew by, `session` for its summary), the board's `card` event
for the chips on the worktree card, and `user:<id>` (`run_finished`) for the creator's and followers' chimes. The
runner hears `runs` (`prompt_queued`: a prompt waits; `stop`: stop the run, with who stopped it). The payloads are
the typed dicts of `agor.events`.
"""
from __future__ import annotations

from typing import Any

from sqlalchemy import delete, func
from sqlmodel import Session, col, select

from . import canvas, credentials, db, ids, mcp_servers, permissions, runtime_settings
from .auth import require
from .errors import InvalidInput, NotFound
from .models import (AgentSession, CardPlacement, Role, SessionAck, SessionFollow, SessionTurn, TranscriptEntry,
                     User, Worktree, utcnow)
from .events import RUNS_TOPIC, AttentionChanged, PromptQueued, SessionChanged, StopRequested, topic
from .gateway import origin
from .models.agent_sessions import RUNNING
from .runtimes import registry
from .runtime_settings import check_mode, clean_model

MAX_PROMPT_BYTES = 100 * 1024
TRANSCRIPT_PAGE = 2000


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
    with db.transaction() as session:
        return queue_prompt(session, actor, _session(session, session_id), text)


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
    if text:  # a new session has no channel and no Session variables of its own yet: the creator's keys count
        credentials.require_provider_key(session, adapter, actor, actor)
        _queue(session, agent, actor, text)
    publish_change(session, agent, actor)
    return agent


def queue_prompt(session: Session, actor: User, agent: AgentSession, text: str) -> SessionTurn:
    """`prompt` inside the caller's transaction (the board, the API, a zone trigger, a chat message: one set of
    limits). Someone else's session needs the `prompt` level; it still runs as its creator, and the transcript
    shows who prompted it."""
    text = _clean_prompt(text)
    permissions.require_session(session, actor, agent, 'prompt')
    worktree = session.get(Worktree, agent.worktree_id)
    if worktree is None or worktree.archived:
        name = worktree.name if worktree else 'Its worktree'
        raise InvalidInput(f'{name} is archived: restore it to prompt this session.')
    creator = session.get(User, agent.created_by)
    if creator is not None:  # before anything is queued: the run would have no provider key
        credentials.require_provider_key(session, registry.get(agent.runtime), creator, actor, agent.id)
    turn = _queue(session, agent, actor, text)
    publish_change(session, agent, actor)
    return turn


def stop(actor: User, session_id: str) -> bool:
    """Stop means stop: the prompts still waiting are dropped, and its worker stops the current run (its whole
    process group), which then ends with "Stopped by <actor>." in the transcript. False when nothing was running."""
    require(actor, Role.member, 'stop sessions')
    with db.transaction() as session:
        agent = _session(session, session_id)
        permissions.require_session(session, actor, agent, 'stop')
        if _drop_queue(session, agent):
            publish_change(session, agent, actor)
        if agent.status not in RUNNING:
            return False
        db.emit_after_commit(session, RUNS_TOPIC, StopRequested(type='stop', session_id=agent.id,
                                                                reason=f'Stopped by {actor.name}.'))
        return True


def close_worktree(session: Session, worktree: Worktree) -> None:
    """The worktree is being archived or deleted (in the caller's transaction): its sessions' queued prompts are
    dropped; their workers stop their runs when it hears `worktree_gone` after the commit."""
    for agent in session.exec(select(AgentSession).where(AgentSession.worktree_id == worktree.id)):
        if _drop_queue(session, agent):
            publish_change(session, agent, None)


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


def transcript_after(user: User, session_id: str, after: int = 0, limit: int = TRANSCRIPT_PAGE) -> list[dict[str, Any]]:
    """At most `limit` entries after the entry with id `after`, oldest first: a page of the transcript (the last id
    is where the next page starts)."""
    require(user, Role.viewer, 'read sessions')
    with db.read() as session:
        agent = _visible(session, user, session_id)
        entries = session.exec(select(TranscriptEntry).where(TranscriptEntry.session_id == agent.id,
                                                             col(TranscriptEntry.id) > after)
                               .order_by(col(TranscriptEntry.id)).limit(limit)).all()
    return [entry_view(e) for e in entries]


def usage(user: User, session_id: str) -> dict[int, dict[str, Any]]:
    """Every usage entry of a session the user sees (entry id -> its figures), for the session total."""
    require(user, Role.viewer, 'read sessions')
    with db.read() as session:
        agent = _visible(session, user, session_id)
        rows = session.exec(select(TranscriptEntry.id, TranscriptEntry.data).where(
            TranscriptEntry.session_id == agent.id, TranscriptEntry.kind == 'usage')).all()
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
        needs = [a for a, seen in rows if a.attention_since and (seen is None or seen < a.attention_since)
                 and _needs_viewer(session, user, a)]
    return {'cards': sorted({a.worktree_id for a in needs}), 'sessions': sorted(a.id for a in needs),
            'reasons': {a.worktree_id: a.attention_reason for a in needs if a.attention_reason},
            'running': any(a.status in RUNNING for a, _ in rows)}


def _needs_viewer(session: Session, user: User, agent: AgentSession) -> bool:
    """A request for approval pulses only for those who may answer it (agor.approvals)."""
    return agent.status != 'awaiting_permission' or permissions.session_rights(session, user, agent)['prompt'] is None


# ---- shared with the worker's records (agor.run_records) -------------------------------------------------------------

def entry_view(entry: TranscriptEntry) -> dict[str, Any]:
    return {'id': entry.id, 'turn_id': entry.turn_id, 'kind': entry.kind, 'text': entry.text, 'data': entry.data,
            'created_at': entry.created_at.isoformat()}


def publish_change(session: Session, agent: AgentSession, actor: User | None) -> None:
    """After the commit: the session's summary to whoever has it open, the chips of its worktree card, and the
    attention of the card's board."""
    agent.updated_at = utcnow()
    session.flush()
    db.emit_after_commit(session, topic('session', agent.id),
                         SessionChanged(type='session', session=_summary(session, agent)))
    placement = session.exec(select(CardPlacement).where(CardPlacement.worktree_id == agent.worktree_id)).first()
    if placement is not None:
        canvas.emit_card(session, placement, actor)
        db.emit_after_commit(session, topic('board', placement.board_id),
                             AttentionChanged(type='attention', session_id=agent.id))


def queued_count(session: Session, session_id: str) -> int:
    return session.exec(select(func.count()).select_from(SessionTurn).where(
        SessionTurn.session_id == session_id, SessionTurn.status == 'queued')).one()


def user_name(session: Session, user_id: str) -> str:
    user = session.get(User, user_id)
    return user.name if user else 'Former member'


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


def _summary(session: Session, agent: AgentSession) -> dict[str, Any]:
    queued = queued_count(session, agent.id)
    adapter = registry.get(agent.runtime)
    return {'id': agent.id, 'worktree_id': agent.worktree_id, 'runtime': agent.runtime, 'runtime_label': adapter.label,
            'title': agent.title, 'status': agent.status, 'status_label': canvas.status_label(agent),
            'error': agent.error, 'stuck': agent.stuck, 'queued': queued, 'created_by': agent.created_by,
            'creator': user_name(session, agent.created_by), 'model': agent.model,
            'created_at': agent.created_at.isoformat(), 'updated_at': agent.updated_at.isoformat(),
            'origin': origin.label(session, agent.id)}


def _detail(session: Session, agent: AgentSession, user: User) -> dict[str, Any]:
    following = session.exec(select(SessionFollow).where(SessionFollow.user_id == user.id,
                                                         SessionFollow.session_id == agent.id)).first()
    return {**_summary(session, agent), 'following': following is not None or agent.created_by == user.id,
            'rights': permissions.session_rights(session, user, agent)}


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
