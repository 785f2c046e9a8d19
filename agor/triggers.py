"""Zone triggers: a card dropped into a zone with a prompt template starts (or prompts) a session as the person who
dropped it, decided on the server, once per drop.

A drop fires only when the card arrives in a zone it was not in. The arrival is named by a key (the card's placement,
the zone, and the placement's arrival count) that is unique in the database, so a double drop, a reconnect replaying
an event, or two people dropping the same card into the same zone at once can only ever record one firing: the
second writer's insert fails, and its retry sees the card already in the zone. The firing, the new session and its
first prompt commit in the drop's transaction, so nothing is half-created. The prompt is rendered just before that
transaction (a template may take up to a second in its worker process: the database is not held meanwhile); if the
zone changed in between, the drop starts over.

Behaviours: `always_new` starts a new session with the rendered prompt; `show_picker` records the firing as
`picking` and the dropping user chooses one of their sessions of that worktree (or a new one) in `pick`.
"""
from __future__ import annotations

import asyncio
from dataclasses import dataclass
from typing import Any

from sqlalchemy import update
from sqlalchemy.exc import IntegrityError
from sqlmodel import Session, col, select

from . import agent_sessions, boards, canvas, db, ids, permissions, trigger_template
from .auth import require
from .errors import Conflict, DomainError, Forbidden, InvalidInput
from .events import ZoneFired, topic
from .models import AgentSession, Board, CardPlacement, Repo, Role, User, Worktree, Zone, ZoneFiring, utcnow

HISTORY_LENGTH = 10


# ---- the drop --------------------------------------------------------------------------------------------------------

def drop_card(actor: User, board_id: str, worktree_id: str, x: float, y: float) -> dict[str, Any] | None:
    """Move a card (last write wins); if it arrived in a zone with a trigger, fire it.

    Returns None when nothing fired, else the firing: `started` (with its session), `picking` (with the choices to
    offer) or `failed` (with the reason; the card stays in the zone)."""
    require(actor, Role.member, 'move cards')
    for _ in range(3):
        try:
            return _drop(actor, board_id, worktree_id, x, y)
        except IntegrityError as error:
            if 'drop_key' not in str(error.orig):
                raise
            # Someone else's drop of this card into this zone committed first and fired; moving again sees that.
        except _ZoneChanged:
            pass  # the zone's template changed while its prompt was rendered: render again
    raise Conflict('Someone else is moving this card right now; try again.')


@dataclass(frozen=True)
class _Prompt:
    zone: tuple[str, str]  # the zone's id and the template that was rendered
    text: str | None
    problem: str | None


class _ZoneChanged(Exception):
    pass


def _drop(actor: User, board_id: str, worktree_id: str, x: float, y: float) -> dict[str, Any] | None:
    prompt = _render_ahead(actor, board_id, worktree_id, x, y)
    with db.transaction() as session:
        permissions.visible_board(session, actor, board_id)
        placement, arrived = boards.move_in(session, actor, board_id, worktree_id, x, y)
        if arrived is None or not arrived.trigger_template:
            return None
        if prompt is None or prompt.zone != (arrived.id, arrived.trigger_template):
            raise _ZoneChanged()
        return _fire(session, actor, placement, arrived, prompt)


def _render_ahead(actor: User, board_id: str, worktree_id: str, x: float, y: float) -> _Prompt | None:
    """The prompt of the trigger zone the card would arrive in at (x, y), if any, rendered outside any transaction."""
    with db.read() as session:
        placement = session.exec(select(CardPlacement).where(CardPlacement.worktree_id == worktree_id,
                                                             CardPlacement.board_id == board_id)).first()
        zone = canvas.zone_under_card(session, board_id, x, y)
        if placement is None or zone is None or zone.id == placement.zone_id or not zone.trigger_template:
            return None
        worktree = ids.load(session, Worktree, worktree_id, 'worktree')
        values = template_values(session, worktree, zone, actor)
    key = (zone.id, zone.trigger_template)
    try:
        return _Prompt(key, trigger_template.render(zone.trigger_template, values), None)
    except trigger_template.TemplateProblem as problem:
        return _Prompt(key, None, str(problem))


def _fire(session: Session, actor: User, placement: CardPlacement, zone: Zone, prompt: _Prompt) -> dict[str, Any]:
    firing = ZoneFiring(drop_key=f'{placement.id}:{zone.id}:{placement.zone_entry}', zone_id=zone.id,
                        board_id=zone.board_id, worktree_id=placement.worktree_id, user_id=actor.id, status='picking')
    session.add(firing)
    session.flush()  # the unique drop key is checked here, before anything else is written
    worktree = ids.load(session, Worktree, placement.worktree_id, 'worktree')
    try:
        permissions.require_worktree(session, actor, worktree, permissions.Level.session, 'start sessions in it')
    except DomainError as refused:
        firing.status, firing.error, firing.settled_at = 'failed', refused.message, utcnow()
        return firing_view(session, firing)
    if prompt.problem is not None:
        firing.status, firing.error, firing.settled_at = 'failed', prompt.problem, utcnow()
        return firing_view(session, firing)
    firing.prompt = prompt.text
    if zone.trigger_behavior == 'always_new':
        agent = agent_sessions.add(session, actor, worktree, canvas.trigger_runtime(zone), firing.prompt)
        _started(session, firing, agent, actor, worktree, zone)
        return firing_view(session, firing)
    return {**firing_view(session, firing), **_choices(session, actor, worktree, zone)}


def pick(actor: User, firing_id: str, session_id: str | None = None, runtime: str | None = None) -> dict[str, Any]:
    """The dropping user's answer to `show_picker`: prompt one of their sessions, or start a new one (with
    `runtime`, by default the zone's). Only once: a second answer (another tab, a double click) is refused."""
    require(actor, Role.member, 'start sessions')
    with db.transaction() as session:
        firing = _own_picking(session, actor, firing_id)
        worktree = ids.load(session, Worktree, firing.worktree_id, 'worktree')
        zone = ids.load(session, Zone, firing.zone_id, 'zone')
        if session_id:
            agent = session.get(AgentSession, session_id)
            if agent is None or agent.worktree_id != worktree.id or agent.created_by != actor.id:
                raise InvalidInput('Pick one of your sessions of this worktree, or start a new one.')
            agent_sessions.queue_prompt(session, actor, agent, firing.prompt or '')
        else:
            agent = agent_sessions.add(session, actor, worktree, runtime or canvas.trigger_runtime(zone), firing.prompt)
        _started(session, firing, agent, actor, worktree, zone)
        return firing_view(session, firing)


def cancel(actor: User, firing_id: str) -> None:
    """The dropping user closed the picker: the card stays, nothing starts."""
    with db.transaction() as session:
        firing = _own_picking(session, actor, firing_id)
        firing.status, firing.settled_at = 'cancelled', utcnow()


def _own_picking(session: Session, actor: User, firing_id: Any) -> ZoneFiring:
    """Claim a `picking` firing of the actor's: a conditional update, so two answers cannot both win."""
    firing = ids.load(session, ZoneFiring, firing_id, 'trigger')
    if firing.user_id != actor.id:
        raise Forbidden('Only the person who dropped the card chooses what its trigger does.')
    claimed = session.exec(update(ZoneFiring).where(col(ZoneFiring.id) == firing.id,  # type: ignore[call-overload]
                                                    col(ZoneFiring.status) == 'picking')
                           .values(status='claimed')).rowcount
    if not claimed:
        raise Conflict('This trigger was already answered.')
    return firing


def _started(session: Session, firing: ZoneFiring, agent: AgentSession, actor: User, worktree: Worktree,
             zone: Zone) -> None:
    firing.status, firing.session_id, firing.settled_at = 'started', agent.id, utcnow()
    session.flush()
    db.emit_after_commit(session, topic('board', zone.board_id), ZoneFired(
        type='zone_fired', firing_id=firing.id, by=actor.name, by_id=actor.id, worktree=worktree.name,
        worktree_id=worktree.id, zone=zone.label, zone_id=zone.id, session_id=agent.id))


def _choices(session: Session, actor: User, worktree: Worktree, zone: Zone) -> dict[str, Any]:
    """What the picker offers: the dropping user's sessions of the worktree, newest first, with a running one as the
    default (else the most recent, else a new session)."""
    mine = session.exec(select(AgentSession).where(AgentSession.worktree_id == worktree.id,
                                                   AgentSession.created_by == actor.id)
                        .order_by(col(AgentSession.updated_at).desc())).all()
    running = next((a for a in mine if a.status == 'running'), None)
    default = running or (mine[0] if mine else None)
    return {'sessions': [{'id': a.id, 'label': f'{a.title} · {canvas.session_label(a)}'} for a in mine],
            'default_session': default.id if default else None,
            'runtime': canvas.trigger_runtime(zone)}


# ---- reads -----------------------------------------------------------------------------------------------------------

def history(user: User, zone_id: str, limit: int = HISTORY_LENGTH) -> list[dict[str, Any]]:
    """The zone's recent firings, newest first: who, which worktree, which session, when, and how it went."""
    require(user, Role.viewer, 'read boards')
    with db.read() as session:
        zone = session.get(Zone, zone_id) if isinstance(zone_id, str) else None
        if zone is None:
            return []  # a deleted zone's firings went with it
        permissions.visible_board(session, user, zone.board_id)
        firings = session.exec(select(ZoneFiring).where(ZoneFiring.zone_id == zone.id)
                               .order_by(col(ZoneFiring.created_at).desc()).limit(limit)).all()
        return [firing_view(session, f) for f in firings]


def waiting_picks(user: User, board_id: str) -> list[dict[str, Any]]:
    """The user's unanswered pickers on this board (a reload or a reconnect asks again), newest first."""
    with db.read() as session:
        firings = session.exec(select(ZoneFiring).where(ZoneFiring.board_id == board_id,
                                                        ZoneFiring.user_id == user.id,
                                                        ZoneFiring.status == 'picking')
                               .order_by(col(ZoneFiring.created_at).desc())).all()
        result = []
        for firing in firings:  # a firing goes with its worktree and its zone (ON DELETE CASCADE)
            worktree = ids.load(session, Worktree, firing.worktree_id, 'worktree')
            zone = ids.load(session, Zone, firing.zone_id, 'zone')
            result.append({**firing_view(session, firing), **_choices(session, user, worktree, zone)})
        return result


async def preview(user: User, board_id: str, zone_id: str | None, source: str,
                  worktree_id: str | None = None) -> dict[str, Any]:
    """Render a template being edited against a real card (the chosen one, else one in the zone, else any on the
    board) or, on an empty board, the built-in sample worktree. It renders in a template worker, waiting there rather
    than in a thread of the app; cancelling the awaiting task (a newer preview) stops the render."""
    values, sample, chosen = await asyncio.to_thread(_preview_values, user, board_id, zone_id, worktree_id)
    try:
        text, error = await trigger_template.render_async(source, values), None
    except trigger_template.TemplateProblem as problem:
        text, error = None, str(problem)
    return {'text': text, 'error': error, 'sample': sample, 'worktree_id': chosen}


def _preview_values(user: User, board_id: str, zone_id: str | None,
                    worktree_id: str | None) -> tuple[dict[str, dict[str, Any]], str, str | None]:
    require(user, Role.member, 'edit zones')
    with db.read() as session:
        board = permissions.visible_board(session, user, board_id)
        placements = session.exec(select(CardPlacement).where(CardPlacement.board_id == board.id)
                                  .order_by(col(CardPlacement.updated_at))).all()
        chosen = next((p for p in placements if p.worktree_id == worktree_id), None) \
            or next((p for p in placements if zone_id and p.zone_id == zone_id), None) \
            or next(iter(placements), None)
        zone = session.get(Zone, zone_id) if zone_id else None
        zone = zone if zone is not None and zone.board_id == board.id else None
        if chosen is None:
            return trigger_template.SAMPLE, 'sample worktree “auth-fix”', None
        worktree = ids.load(session, Worktree, chosen.worktree_id, 'worktree')
        return template_values(session, worktree, zone, user), worktree.name, chosen.worktree_id


def firing_view(session: Session, firing: ZoneFiring) -> dict[str, Any]:
    user = session.get(User, firing.user_id)
    worktree = session.get(Worktree, firing.worktree_id)
    agent = session.get(AgentSession, firing.session_id) if firing.session_id else None
    zone = session.get(Zone, firing.zone_id)
    return {'id': firing.id, 'status': firing.status, 'by': user.name if user else 'Former member',
            'by_id': firing.user_id, 'worktree': worktree.name if worktree else '?', 'worktree_id': firing.worktree_id,
            'zone': zone.label if zone else '', 'zone_id': firing.zone_id, 'session_id': firing.session_id,
            'session': agent.title if agent else None, 'prompt': firing.prompt, 'error': firing.error,
            'created_at': firing.created_at.isoformat()}


def template_values(session: Session, worktree: Worktree, zone: Zone | None, user: User) -> dict[str, dict[str, Any]]:
    """What a template sees (agor.trigger_template.FIELDS): only these values, never the models themselves."""
    repo = session.get(Repo, worktree.repo_id)
    creator = session.get(User, worktree.created_by)
    placement = session.exec(select(CardPlacement).where(CardPlacement.worktree_id == worktree.id)).first()
    board = session.get(Board, placement.board_id) if placement else None
    return {
        'worktree': {'name': worktree.name, 'branch': worktree.branch, 'path': worktree.path,
                     'repo': repo.name if repo else '', 'base': worktree.base_ref or (repo.default_branch if repo
                                                                                       else ''),
                     'notes': worktree.notes, 'issue_url': worktree.issue_url, 'pr_url': worktree.pr_url,
                     'created_by': creator.name if creator else ''},
        'board': {'name': board.name, 'description': board.description, 'slug': board.slug,
                  'url': f'/b/{board.slug}'} if board else {},
        'zone': {'label': zone.label} if zone else {},
        'user': {'name': user.name, 'email': user.email},
    }
