"""The canvas read model: what every feature builds boards, zones and cards from, and the geometry they share.

Boards, comments, sessions and triggers write; this module says what a card, a zone and a board look like to every
viewer (`card_view` with its session chips and open-thread count, `zone_view` with its trigger settings), queues a
card's new state for its board's viewers (`emit_card`), and holds the rules of the canvas: sizes, valid points,
which zone a card is in, and the settings a zone's trigger takes. It imports none of the features (only the gateway's
`origin`, which reads models), so each of them can import it.
"""
from __future__ import annotations

import math
from typing import Any

from sqlalchemy import func
from sqlmodel import Session, col, select

from . import db, ids, trigger_template
from .errors import InvalidInput
from .events import CardChanged, topic
from .gateway import origin
from .models import AgentSession, Board, CardPlacement, Comment, Repo, User, Worktree, Zone
from .runtimes import registry

CARD_W = 240
CARD_H = 96
ZONE_MIN = 80
ZONE_MAX = 20000
COORD_MAX = 1_000_000
CHIPS_PER_CARD = 4
TRIGGER_BEHAVIORS = {'always_new': 'Always start a new session', 'show_picker': 'Let me pick a session'}
DEFAULT_RUNTIME = 'claude-code'
STATUS_LABELS = {'awaiting_input': 'ready', 'idle': 'new', 'awaiting_permission': 'needs approval'}


# ---- views -----------------------------------------------------------------------------------------------------------

def board_view(board: Board) -> dict[str, Any]:
    return {'id': board.id, 'slug': board.slug, 'name': board.name, 'description': board.description,
            'icon': board.icon, 'color': board.color, 'short_id': ids.short(board.id), 'private': board.private}


def state(session: Session, board: Board) -> dict[str, Any]:
    """Everything the canvas draws, in the shape the canvas component takes as props."""
    zones = session.exec(select(Zone).where(Zone.board_id == board.id).order_by(Zone.created_at)).all()
    rows = session.exec(
        select(CardPlacement, Worktree, Repo)
        .join(Worktree, col(Worktree.id) == CardPlacement.worktree_id)
        .join(Repo, col(Repo.id) == Worktree.repo_id)
        .where(CardPlacement.board_id == board.id)
        .order_by(CardPlacement.updated_at)).all()
    counts = open_comment_counts(session, board.id)
    chips = session_chips(session, [w.id for _, w, _ in rows])
    return {'zones': [zone_view(z) for z in zones],
            'cards': [card_view(p, w, r, counts.get(w.id, 0), chips.get(w.id, [])) for p, w, r in rows]}


def zone_view(zone: Zone) -> dict[str, Any]:
    return {'id': zone.id, 'label': zone.label, 'x': zone.x, 'y': zone.y, 'w': zone.w, 'h': zone.h,
            'border': zone.border_color, 'background': zone.background_color, 'locked': zone.locked,
            'trigger': bool(zone.trigger_template), 'trigger_template': zone.trigger_template or '',
            'trigger_behavior': zone.trigger_behavior, 'trigger_runtime': trigger_runtime(zone)}


def card_view(placement: CardPlacement, worktree: Worktree, repo: Repo, comments: int = 0,
              sessions: list[dict[str, Any]] | None = None) -> dict[str, Any]:
    """A card as every viewer sees it (whether it pulses is per viewer: see agor.agent_sessions.board_attention)."""
    return {'id': worktree.id, 'name': worktree.name, 'branch': worktree.branch, 'repo': repo.name,
            'x': placement.x, 'y': placement.y, 'zone': placement.zone_id, 'sessions': sessions or [],
            'comments': comments}


def card_of(session: Session, placement: CardPlacement) -> dict[str, Any]:
    """The card of one placement, read now."""
    worktree = session.get(Worktree, placement.worktree_id)
    assert worktree is not None
    repo = session.get(Repo, worktree.repo_id)
    assert repo is not None
    counts = open_comment_counts(session, placement.board_id, worktree.id)
    chips = session_chips(session, [worktree.id])
    return card_view(placement, worktree, repo, counts.get(worktree.id, 0), chips.get(worktree.id, []))


def emit_card(session: Session, placement: CardPlacement, actor: User | None) -> None:
    """Queue the card's current state for every viewer of its board (sent after commit)."""
    db.emit_after_commit(session, topic('board', placement.board_id),
                         CardChanged(type='card', card=card_of(session, placement), by=actor.name if actor else ''))


def session_chips(session: Session, worktree_ids: list[str]) -> dict[str, list[dict[str, Any]]]:
    """The newest sessions of each worktree, for the status chips on its card."""
    if not worktree_ids:
        return {}
    agents = session.exec(select(AgentSession).where(col(AgentSession.worktree_id).in_(worktree_ids))
                          .order_by(col(AgentSession.created_at).desc())).all()
    chips: dict[str, list[dict[str, Any]]] = {}
    for agent in agents:
        mine = chips.setdefault(agent.worktree_id, [])
        if len(mine) < CHIPS_PER_CARD:
            mine.append({'id': agent.id, 'status': 'stuck' if agent.stuck else agent.status,
                         'label': session_label(agent)})
    origins = origin.labels(session, [chip['id'] for mine in chips.values() for chip in mine])
    for chip in (chip for mine in chips.values() for chip in mine):
        chip['origin'] = origins.get(chip['id'])
    return chips


def session_label(agent: AgentSession) -> str:
    """`Claude Code · ready`: the agent and what it is doing, as chips and pickers name a session."""
    return f'{registry.get(agent.runtime).label} · {status_label(agent)}'


def status_label(agent: AgentSession) -> str:
    return 'stuck?' if agent.stuck else STATUS_LABELS.get(agent.status, agent.status)


def open_comment_counts(session: Session, board_id: str, worktree_id: str | None = None) -> dict[str, int]:
    """Open (unresolved, not deleted) threads on this board per worktree."""
    query = (select(Comment.target_id, func.count())
             .where(Comment.board_id == board_id, Comment.target_type == 'worktree', col(Comment.parent_id).is_(None),
                    Comment.resolved == False, Comment.deleted == False)  # noqa: E712
             .group_by(Comment.target_id))
    if worktree_id is not None:
        query = query.where(Comment.target_id == worktree_id)
    return {target: count for target, count in session.exec(query).all() if target}


# ---- geometry --------------------------------------------------------------------------------------------------------

def zone_at(zones: list[Zone], x: float, y: float) -> Zone | None:
    """The most specific (smallest) zone containing the point, if any."""
    containing = [z for z in zones if z.x <= x <= z.x + z.w and z.y <= y <= z.y + z.h]
    return min(containing, key=lambda z: (z.w * z.h, -z.created_at.timestamp()), default=None)


def zone_under_card(session: Session, board_id: str, x: float, y: float) -> Zone | None:
    """The zone a card placed at the absolute point (x, y) belongs to: the one under its centre."""
    zones = list(session.exec(select(Zone).where(Zone.board_id == board_id)).all())
    return zone_at(zones, coord(x) + CARD_W / 2, coord(y) + CARD_H / 2)


def card_origin(session: Session, placement: CardPlacement) -> tuple[float, float]:
    """The card's absolute top-left on its board."""
    zone = session.get(Zone, placement.zone_id) if placement.zone_id else None
    return placement.x + (zone.x if zone else 0), placement.y + (zone.y if zone else 0)


def clean_point(x: Any, y: Any) -> tuple[float, float]:
    return coord(x), coord(y)


def coord(value: Any) -> float:
    """A canvas coordinate from a browser: a finite number on the canvas, to 0.1 px."""
    try:
        number = float(value)
    except (TypeError, ValueError):
        raise InvalidInput(f'{value!r} is not a number.') from None
    if not math.isfinite(number) or abs(number) > COORD_MAX:
        raise InvalidInput('That position is off the canvas.')
    return round(number, 1)


def zone_size(value: Any) -> float:
    number = coord(value)
    if not ZONE_MIN <= number <= ZONE_MAX:
        raise InvalidInput(f'A zone is between {ZONE_MIN} and {ZONE_MAX} pixels wide and high.')
    return number


# ---- zone triggers ---------------------------------------------------------------------------------------------------

TRIGGER_FIELDS = ('trigger_template', 'trigger_behavior', 'trigger_runtime')


def trigger_settings(changes: dict[str, Any]) -> dict[str, Any]:
    """The trigger fields among a zone's `changes`, checked: an empty template (None) makes the zone only
    organizational; a template must parse, use only the four variables and render against the sample worktree
    (agor.trigger_template), which may take up to a second, so call this before a transaction."""
    settings = {}
    if 'trigger_template' in changes:
        settings['trigger_template'] = _checked_template(changes['trigger_template'])
    if 'trigger_behavior' in changes:
        if changes['trigger_behavior'] not in TRIGGER_BEHAVIORS:
            raise InvalidInput(f'A trigger behaviour is one of {", ".join(TRIGGER_BEHAVIORS)}.')
        settings['trigger_behavior'] = changes['trigger_behavior']
    if 'trigger_runtime' in changes:
        runtime = changes['trigger_runtime']
        if runtime is not None and not isinstance(runtime, str):
            raise InvalidInput('Choose an agent for the trigger.')
        settings['trigger_runtime'] = registry.get(runtime).name if runtime else None
    return settings


def trigger_runtime(zone: Zone) -> str:
    """The agent a zone's trigger starts: the zone's choice, else the default."""
    return zone.trigger_runtime or DEFAULT_RUNTIME


def _checked_template(source: Any) -> str | None:
    if source is None or (isinstance(source, str) and not source.strip()):
        return None
    try:
        trigger_template.render(source, trigger_template.SAMPLE)
    except trigger_template.TemplateProblem as problem:
        raise InvalidInput(f'The trigger template cannot be saved: {problem}') from None
    return source.strip()
