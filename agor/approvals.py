"""Approvals: an agent asks to use a tool (Claude Code's `--permission-prompt-tool`, pointed at the app's MCP server:
agor.agent_tools.approve) and a person answers in the session panel.

`request` stores the request and puts the session in `awaiting_permission`: its card pulses for every viewer who may
answer (`may_answer`: prompt rights on the session, agor.permissions) and each of them sees the request (tool,
command or arguments) with Allow and Deny. `decide` is one conditional update, so the first answer wins and records
who decided; `wait` (the MCP tool call, on the event loop) returns on the answer, heard on `session:<id>` (the Redis
bus carries it across a cluster), or denies when nobody answered within `Settings.approval_timeout_seconds`. A run
that ends while it waits (stopped, its worktree archived) cancels its requests.
"""
from __future__ import annotations

import asyncio
import json
from datetime import timedelta
from typing import Any

from sqlalchemy import update
from sqlmodel import Session, col, select

from . import agent_sessions, credentials, db, events, permissions, user_secrets
from .auth import require
from .errors import Conflict, NotFound
from .events import ApprovalChanged, topic
from .models import AgentSession, Approval, Role, User, Worktree, utcnow
from .models.agent_sessions import RUNNING
from .runtimes.base import shorten

RECENT = 5  # answered requests the panel still shows


# ---- the agent's side ------------------------------------------------------------------------------------------------

def request(session_id: str, turn_id: str | None, tool: str, tool_input: Any, timeout: float) -> dict[str, Any]:
    """Store a pending request of the session's run; the session awaits permission and its card pulses."""
    tool = tool if isinstance(tool, str) and tool else 'a tool'
    tool_input = tool_input if isinstance(tool_input, dict) else {'input': tool_input}
    with db.transaction() as session:
        agent = session.get(AgentSession, session_id)
        if agent is None or agent.status not in RUNNING:
            raise NotFound('The run that asked has ended.')
        redact = user_secrets.redactor(credentials.secret_values(session, agent.created_by, agent.id))
        tool_input = user_secrets.redact_data(tool_input, redact)  # shown to every viewer, like the transcript
        approval = Approval(session_id=agent.id, turn_id=turn_id, tool=redact(tool[:200]), input=tool_input,
                            expires_at=utcnow() + timedelta(seconds=timeout))
        session.add(approval)
        session.flush()
        agent.status, agent.attention_since = 'awaiting_permission', utcnow()
        agent.attention_reason = shorten(f'Asks to use {summary(approval)}', 300)
        agent_sessions.publish_change(session, agent, None)
        _emit(session, approval)
        return view(session, approval)


async def wait(approval_id: str, session_id: str, timeout: float) -> dict[str, Any]:
    """The request's answer: allowed or denied by a person, denied when nobody answered in `timeout` seconds
    (`expired`), or `cancelled` when the run ended meanwhile."""
    loop = asyncio.get_running_loop()
    heard = asyncio.Event()

    def on_event(event: Any) -> None:
        if event.get('type') == 'approval' and event['approval']['id'] == approval_id or \
                event.get('type') == 'session' and event['session']['status'] not in RUNNING:
            loop.call_soon_threadsafe(heard.set)  # the bus may deliver on another thread
    unsubscribe = events.bus.subscribe(topic('session', session_id), on_event)
    try:
        deadline = loop.time() + timeout
        while True:
            found = await asyncio.to_thread(_current, approval_id)
            if found['status'] != 'pending':
                return found
            remaining = deadline - loop.time()
            if remaining <= 0:
                return await asyncio.to_thread(close, approval_id, 'expired')
            heard.clear()
            try:
                await asyncio.wait_for(heard.wait(), remaining)
            except TimeoutError:
                pass
    finally:
        unsubscribe()


def close(approval_id: str, status: str) -> dict[str, Any]:
    """Deny a request nobody answered (`expired`) or whose run ended (`cancelled`); an answer that came first
    stands."""
    with db.transaction() as session:
        _claim(session, approval_id, status, None)
        approval = session.get(Approval, approval_id)
        if approval is None:
            raise NotFound('That approval request no longer exists.')
        _settled(session, approval)
        return view(session, approval)


def answer(approval: dict[str, Any], tool_input: dict[str, Any]) -> dict[str, Any]:
    """What Claude Code's permission prompt tool returns for the request's outcome: an allowed call runs with the
    input the agent sent (the stored one has the run's secret values hidden)."""
    if approval['status'] == 'allowed':
        return {'behavior': 'allow', 'updatedInput': tool_input}
    return {'behavior': 'deny', 'message': approval['outcome']}


# ---- the people's side -----------------------------------------------------------------------------------------------

def decide(actor: User, approval_id: str, allow: bool) -> dict[str, Any]:
    """Allow or deny a pending request. Needs prompt rights on the session (your own session: `session`); the first
    answer wins, a later one is told who answered."""
    require(actor, Role.member, 'answer approval requests')
    with db.transaction() as session:
        approval = session.get(Approval, approval_id) if isinstance(approval_id, str) else None
        agent = session.get(AgentSession, approval.session_id) if approval is not None else None
        if approval is None or agent is None or _hidden(session, actor, agent):
            raise NotFound('That approval request no longer exists.')
        permissions.require_session(session, actor, agent, 'answer approval requests of')
        if not _claim(session, approval.id, 'allowed' if allow else 'denied', actor.id):
            session.refresh(approval)
            raise Conflict(f'Already answered: {outcome(session, approval)}')
        session.refresh(approval)
        _settled(session, approval)
        return view(session, approval)


def for_session(user: User, session_id: str) -> list[dict[str, Any]]:
    """The session's pending requests and the last few answered, oldest first, for the panel, with whether this user
    may answer (what the panel offers; `decide` checks again)."""
    require(user, Role.viewer, 'read sessions')
    with db.read() as session:
        agent = session.get(AgentSession, session_id) if isinstance(session_id, str) else None
        if agent is None or _hidden(session, user, agent):
            raise NotFound('That session no longer exists.')
        rows = session.exec(select(Approval).where(Approval.session_id == agent.id)
                            .order_by(col(Approval.created_at).desc())).all()
        pending = [a for a in rows if a.status == 'pending']
        answered = [a for a in rows if a.status != 'pending'][:RECENT]
        answers = may_answer(session, user, agent)
        return [{**view(session, a), 'may_answer': answers}
                for a in sorted([*pending, *answered], key=lambda a: a.created_at)]


def may_answer(session: Session, user: User, agent: AgentSession) -> bool:
    return permissions.session_rights(session, user, agent)['prompt'] is None


# ---- helpers ---------------------------------------------------------------------------------------------------------

def summary(approval: Approval) -> str:
    """`Bash: touch done.txt`: the tool and what it would do, in one line."""
    args = approval.input
    detail = args.get('command') or args.get('file_path') or args.get('path') or args.get('url')
    if not isinstance(detail, str):
        detail = json.dumps(args, ensure_ascii=False) if args else ''
    return f'{approval.tool}: {shorten(detail, 200)}' if detail else approval.tool


def outcome(session: Session, approval: Approval) -> str:
    person = session.get(User, approval.decided_by) if approval.decided_by else None
    who = person.name if person else 'a former member'
    return {'pending': 'waiting for an answer', 'allowed': f'Allowed by {who}.', 'denied': f'Denied by {who}.',
            'expired': 'Denied: nobody answered in time.',
            'cancelled': 'Cancelled: the run ended first.'}.get(approval.status, approval.status)


def view(session: Session, approval: Approval) -> dict[str, Any]:
    return {'id': approval.id, 'session_id': approval.session_id, 'tool': approval.tool, 'input': approval.input,
            'summary': summary(approval), 'status': approval.status, 'outcome': outcome(session, approval),
            'decided_by': approval.decided_by, 'created_at': approval.created_at.isoformat(),
            'expires_at': approval.expires_at.isoformat()}


def _current(approval_id: str) -> dict[str, Any]:
    """The request as stored; a pending one whose run has ended is cancelled."""
    with db.read() as session:
        approval = session.get(Approval, approval_id)
        if approval is None:
            raise NotFound('That approval request no longer exists.')
        agent = session.get(AgentSession, approval.session_id)
        found = view(session, approval)
    if found['status'] == 'pending' and (agent is None or agent.status not in RUNNING):
        return close(approval_id, 'cancelled')
    return found


def _claim(session: Session, approval_id: str, status: str, user_id: str | None) -> bool:
    """The one conditional update that decides a request: True when this call decided it."""
    done = session.execute(update(Approval).where(col(Approval.id) == approval_id, col(Approval.status) == 'pending')
                           .values(status=status, decided_by=user_id, decided_at=utcnow()))
    return done.rowcount == 1


def _settled(session: Session, approval: Approval) -> None:
    """After an answer: the session runs on once nothing else of it waits."""
    agent = session.get(AgentSession, approval.session_id)
    waiting = session.exec(select(Approval.id).where(Approval.session_id == approval.session_id,
                                                     Approval.status == 'pending')).first()
    if agent is not None and agent.status == 'awaiting_permission' and waiting is None:
        agent.status, agent.attention_since, agent.attention_reason = 'running', None, None
        agent_sessions.publish_change(session, agent, None)
    _emit(session, approval)


def cancel_pending(session: Session, session_id: str) -> None:
    """In the transaction that ends the session's run: what it still asked can no longer be answered (one run at a
    time per session, so every pending request is that run's); viewers see it cancelled."""
    for approval in session.exec(select(Approval).where(Approval.session_id == session_id,
                                                        Approval.status == 'pending')).all():
        approval.status, approval.decided_at = 'cancelled', utcnow()
        _emit(session, approval)


def _emit(session: Session, approval: Approval) -> None:
    db.emit_after_commit(session, topic('session', approval.session_id),
                         ApprovalChanged(type='approval', approval=view(session, approval)))


def _hidden(session: Session, user: User, agent: AgentSession) -> bool:
    worktree = session.get(Worktree, agent.worktree_id)
    return worktree is None or permissions.worktree_level(session, user, worktree) is None
