"""Boards, zones and worktree cards: every write is one transaction followed by one event on `board:<id>`."""
from __future__ import annotations

import math
import re
import unicodedata
from typing import Any

from sqlalchemy import func
from sqlmodel import Session, col, select

from . import db, ids, permissions, terminals, trigger_template
from .auth import require
from .errors import Forbidden, InvalidInput, NotFound
from .events import board_topic
from .models import AgentSession, Board, BoardMember, CardPlacement, Comment, Repo, Role, User, Worktree, Zone, utcnow
from .permissions import Level
from .runtimes import registry

CARD_W = 240
CARD_H = 96
ZONE_MIN = 80
ZONE_MAX = 20000
COORD_MAX = 1_000_000
COLOR = re.compile(r'^#[0-9a-fA-F]{6}([0-9a-fA-F]{2})?$')
ZONE_FIELDS = {'label', 'x', 'y', 'w', 'h', 'border_color', 'background_color', 'locked', 'trigger_template',
               'trigger_behavior', 'trigger_runtime'}
TRIGGER_BEHAVIORS = {'always_new': 'Always start a new session', 'show_picker': 'Let me pick a session'}


# ---- boards ---------------------------------------------------------------------------------------------------------

def list_boards(user: User) -> list[dict[str, Any]]:
    """The boards the user may see (agor.permissions: private boards only for their creator, admins, members)."""
    if not user.has(Role.viewer):
        return []
    with db.read() as session:
        hidden = permissions.hidden_board_ids(session, user)
        boards = [b for b in session.exec(select(Board).order_by(Board.name)).all() if b.id not in hidden]
        counts = dict(session.exec(select(CardPlacement.board_id, func.count()).group_by(CardPlacement.board_id)).all())
    return [{**board_view(b), 'cards': counts.get(b.id, 0)} for b in boards]


def get_board(user: User, ref: str) -> Board:
    """A board by slug, full id or id prefix, if the user may see it (a private one looks like no board at all, and
    never makes a prefix ambiguous)."""
    with db.read() as session:
        hidden = permissions.hidden_board_ids(session, user)
        board = session.exec(select(Board).where(Board.slug == ref.lower())).first()
        if board is None or board.id in hidden:
            try:
                board = ids.resolve(session, Board, ref, 'board', hidden)
            except NotFound:
                raise NotFound(f'No board {ref!r}.') from None
        return board


def create_board(actor: User, name: str, description: str = '', icon: str = '🗂️', color: str = '#0d9488') -> Board:
    require(actor, Role.member, 'create boards')
    name = _clean_name(name, 'board')
    with db.transaction() as session:
        board = Board(name=name, slug=unique_slug(session, slugify(name)), description=description.strip()[:2000],
                      icon=_clean_icon(icon), color=_clean_color(color), created_by=actor.id)
        session.add(board)
        return board


def access(user: User, board_id: str) -> dict[str, Any]:
    """A board's sharing settings as its settings dialog shows them."""
    with db.read() as session:
        board = permissions.visible_board(session, user, board_id)
        manage = permissions.may_manage_board(user, board)
        return {'private': board.private, 'members': permissions.member_ids(session, board.id),
                'others_can': board.others_can, 'created_by': board.created_by,
                'manage': None if manage else 'Only the creator of this board or an admin changes its sharing.'}


def set_access(actor: User, board_id: str, *, private: bool, members: list[str], others_can: str) -> Board:
    """Make a board private to its creator, admins and `members` (or open to everyone), and set the level new
    worktrees on it start with. Viewers who lose access are sent away at once (the `access` event)."""
    require(actor, Role.member, 'change who sees boards')
    level = permissions.parse_level(others_can)
    if not isinstance(private, bool) or not isinstance(members, list) or not all(isinstance(m, str) for m in members):
        raise InvalidInput('Choose whether the board is private and who its members are.')
    with db.transaction() as session:
        board = permissions.visible_board(session, actor, board_id)
        permissions.require_manage_board(actor, board)
        wanted = set(members) - {board.created_by}
        known = set(session.exec(select(User.id).where(col(User.id).in_(wanted))).all()) if wanted else set()
        if wanted - known:
            raise InvalidInput('Some of the chosen members no longer have an account.')
        for row in session.exec(select(BoardMember).where(BoardMember.board_id == board.id)).all():
            if row.user_id in wanted:
                wanted.discard(row.user_id)
            else:
                session.delete(row)
        for user_id in wanted:
            session.add(BoardMember(board_id=board.id, user_id=user_id))
        board.private, board.others_can, board.updated_at = private, level.name, utcnow()
        session.flush()
        db.emit_after_commit(session, board_topic(board.id), {
            'type': 'access', 'private': board.private, 'created_by': board.created_by,
            'members': permissions.member_ids(session, board.id), 'by': actor.name})
        on_board = session.exec(select(CardPlacement.worktree_id).where(CardPlacement.board_id == board.id)).all()
    terminals.rights_changed(*on_board)
    return board


def update_board(actor: User, board_id: str, *, name: str | None = None, description: str | None = None,
                 icon: str | None = None, color: str | None = None) -> Board:
    """Renaming keeps the slug, so links people already shared keep working."""
    require(actor, Role.member, 'edit boards')
    with db.transaction() as session:
        board = permissions.visible_board(session, actor, board_id)
        if name is not None:
            board.name = _clean_name(name, 'board')
        if description is not None:
            board.description = description.strip()[:2000]
        if icon is not None:
            board.icon = _clean_icon(icon)
        if color is not None:
            board.color = _clean_color(color)
        board.updated_at = utcnow()
        db.emit_after_commit(session, board_topic(board.id), {'type': 'board', 'board': board_view(board),
                                                              'by': actor.name})
        return board


def delete_board(actor: User, board_id: str) -> None:
    """The board's cards leave it; the worktrees themselves stay."""
    require(actor, Role.member, 'delete boards')
    with db.transaction() as session:
        board = permissions.visible_board(session, actor, board_id)
        if board.created_by != actor.id:
            require(actor, Role.admin, "delete other people's boards")
        for placement in session.exec(select(CardPlacement).where(CardPlacement.board_id == board.id)).all():
            session.delete(placement)
        for zone in session.exec(select(Zone).where(Zone.board_id == board.id)).all():
            session.delete(zone)
        session.delete(board)
        db.emit_after_commit(session, board_topic(board.id), {'type': 'board_deleted', 'by': actor.name})


def slugify(text: str) -> str:
    ascii_text = unicodedata.normalize('NFKD', text).encode('ascii', 'ignore').decode()
    slug = re.sub(r'[^a-z0-9]+', '-', ascii_text.lower()).strip('-')[:48].strip('-')
    return slug or 'board'


def unique_slug(session: Session, base: str) -> str:
    taken = set(session.exec(select(Board.slug).where(col(Board.slug).startswith(base))).all())
    if base not in taken and not ids.looks_like_id(base):
        return base
    n = 2
    while f'{base}-{n}' in taken:
        n += 1
    return f'{base}-{n}'


# ---- what the canvas shows -------------------------------------------------------------------------------------------

def board_view(board: Board) -> dict[str, Any]:
    return {'id': board.id, 'slug': board.slug, 'name': board.name, 'description': board.description,
            'icon': board.icon, 'color': board.color, 'short_id': ids.short(board.id), 'private': board.private}


def board_state(user: User, board_id: str) -> dict[str, Any]:
    """Everything the canvas draws, in the shape the canvas component takes as props."""
    with db.read() as session:
        board = permissions.visible_board(session, user, board_id)
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
            'trigger_behavior': zone.trigger_behavior, 'trigger_runtime': zone.trigger_runtime}


def card_view(placement: CardPlacement, worktree: Worktree, repo: Repo, comments: int = 0,
              sessions: list[dict[str, Any]] | None = None) -> dict[str, Any]:
    """A card as every viewer sees it (whether it pulses is per viewer: see agor.agent_sessions.board_attention)."""
    return {'id': worktree.id, 'name': worktree.name, 'branch': worktree.branch, 'repo': repo.name,
            'x': placement.x, 'y': placement.y, 'zone': placement.zone_id, 'sessions': sessions or [],
            'comments': comments}


def session_chips(session: Session, worktree_ids: list[str]) -> dict[str, list[dict[str, Any]]]:
    """The newest four sessions of each worktree, for the status chips on its card."""
    if not worktree_ids:
        return {}
    agents = session.exec(select(AgentSession).where(col(AgentSession.worktree_id).in_(worktree_ids))
                          .order_by(col(AgentSession.created_at).desc())).all()
    chips: dict[str, list[dict[str, Any]]] = {}
    for agent in agents:
        mine = chips.setdefault(agent.worktree_id, [])
        if len(mine) < 4:
            mine.append({'id': agent.id, 'status': 'stuck' if agent.stuck else agent.status,
                         'label': f'{registry.get(agent.runtime).label} · {status_label(agent)}'})
    return chips


def status_label(agent: AgentSession) -> str:
    if agent.stuck:
        return 'stuck?'
    return {'awaiting_input': 'ready', 'idle': 'new'}.get(agent.status, agent.status)


def open_comment_counts(session: Session, board_id: str, worktree_id: str | None = None) -> dict[str, int]:
    """Open (unresolved, not deleted) threads on this board per worktree."""
    query = (select(Comment.target_id, func.count())
             .where(Comment.board_id == board_id, Comment.target_type == 'worktree', col(Comment.parent_id).is_(None),
                    Comment.resolved == False, Comment.deleted == False)  # noqa: E712
             .group_by(Comment.target_id))
    if worktree_id is not None:
        query = query.where(Comment.target_id == worktree_id)
    return {target: count for target, count in session.exec(query).all() if target}


def emit_card(session: Session, placement: CardPlacement, actor: User | None) -> None:
    """Queue the card's current state for every viewer of its board (sent after commit)."""
    db.emit_after_commit(session, board_topic(placement.board_id),
                         {'type': 'card', 'card': _card_of(session, placement), 'by': actor.name if actor else ''})


# ---- zones -----------------------------------------------------------------------------------------------------------

def create_zone(actor: User, board_id: str, label: str = 'Zone', x: float = 0, y: float = 0,
                w: float = 480, h: float = 320, border_color: str = '#64748b',
                background_color: str = '#f1f5f9') -> Zone:
    require(actor, Role.member, 'create zones')
    with db.transaction() as session:
        board = permissions.visible_board(session, actor, board_id)
        zone = Zone(board_id=board.id, label=_clean_name(label, 'zone'), x=_coord(x), y=_coord(y), w=_size(w),
                    h=_size(h), border_color=_clean_color(border_color),
                    background_color=_clean_color(background_color))
        session.add(zone)
        db.emit_after_commit(session, board_topic(board.id), {'type': 'zone', 'zone': zone_view(zone),
                                                              'by': actor.name})
        return zone


def update_zone(actor: User, zone_id: str, **changes: Any) -> Zone:
    """Move, resize, relabel, recolour, (un)lock a zone or set its trigger. A locked zone keeps its place and size.

    An empty trigger template makes the zone only organizational; a template must parse, use only the four
    variables and render against the sample worktree (agor.trigger_template)."""
    require(actor, Role.member, 'edit zones')
    unknown = set(changes) - ZONE_FIELDS
    if unknown:
        raise InvalidInput(f'Unknown zone fields: {", ".join(sorted(unknown))}.')
    if 'trigger_template' in changes:  # rendered before the transaction: a render may take up to a second
        changes['trigger_template'] = _checked_template(changes['trigger_template'])
    with db.transaction() as session:
        zone = _zone(session, actor, zone_id)
        locked = bool(changes.get('locked', zone.locked))
        geometry = {k: v for k, v in changes.items() if k in {'x', 'y', 'w', 'h'} and v != getattr(zone, k)}
        if locked and geometry:
            raise Forbidden(f'Zone “{zone.label}” is locked: unlock it to move or resize it.')
        for key in ('x', 'y'):
            if key in geometry:
                setattr(zone, key, _coord(geometry[key]))
        for key in ('w', 'h'):
            if key in geometry:
                setattr(zone, key, _size(geometry[key]))
        if 'label' in changes:
            zone.label = _clean_name(changes['label'], 'zone')
        if 'border_color' in changes:
            zone.border_color = _clean_color(changes['border_color'])
        if 'background_color' in changes:
            zone.background_color = _clean_color(changes['background_color'])
        zone.locked = locked
        _set_trigger(zone, changes)
        db.emit_after_commit(session, board_topic(zone.board_id), {'type': 'zone', 'zone': zone_view(zone),
                                                                   'by': actor.name})
        return zone


def _checked_template(source: Any) -> str | None:
    """None for an empty template; else the template, if it renders against the sample worktree."""
    if source is None or (isinstance(source, str) and not source.strip()):
        return None
    try:
        trigger_template.render(source, trigger_template.SAMPLE)
    except trigger_template.TemplateProblem as problem:
        raise InvalidInput(f'The trigger template cannot be saved: {problem}') from None
    return source.strip()


def _set_trigger(zone: Zone, changes: dict[str, Any]) -> None:
    if 'trigger_template' in changes:
        zone.trigger_template = changes['trigger_template']
    if 'trigger_behavior' in changes:
        if changes['trigger_behavior'] not in TRIGGER_BEHAVIORS:
            raise InvalidInput(f'A trigger behaviour is one of {", ".join(TRIGGER_BEHAVIORS)}.')
        zone.trigger_behavior = changes['trigger_behavior']
    if 'trigger_runtime' in changes:
        runtime = changes['trigger_runtime']
        if runtime is not None and not isinstance(runtime, str):
            raise InvalidInput('Choose an agent for the trigger.')
        zone.trigger_runtime = registry.get(runtime).name if runtime else None


def delete_zone(actor: User, zone_id: str) -> None:
    """Cards inside stay where they are on the board (their positions become absolute)."""
    require(actor, Role.member, 'delete zones')
    with db.transaction() as session:
        zone = _zone(session, actor, zone_id)
        if zone.locked:
            raise Forbidden(f'Zone “{zone.label}” is locked: unlock it before deleting it.')
        moved = []
        for placement in session.exec(select(CardPlacement).where(CardPlacement.zone_id == zone.id)).all():
            placement.x, placement.y, placement.zone_id = placement.x + zone.x, placement.y + zone.y, None
            moved.append(placement)
        from .comments import detach_targets  # comments build on boards, so import at call time
        detach_targets(session, 'zone', zone.id, f'zone “{zone.label}”', {zone.board_id: (zone.x, zone.y)})
        session.delete(zone)
        session.flush()
        topic = board_topic(zone.board_id)
        db.emit_after_commit(session, topic, {'type': 'zone_deleted', 'id': zone.id, 'by': actor.name})
        for placement in moved:
            emit_card(session, placement, actor)


def zone_at(zones: list[Zone], x: float, y: float) -> Zone | None:
    """The most specific (smallest) zone containing the point, if any."""
    containing = [z for z in zones if z.x <= x <= z.x + z.w and z.y <= y <= z.y + z.h]
    return min(containing, key=lambda z: (z.w * z.h, -z.created_at.timestamp()), default=None)


# ---- cards -----------------------------------------------------------------------------------------------------------

def place_card(actor: User, board_id: str, worktree_id: str, x: float, y: float) -> CardPlacement:
    """Put a worktree's card on a board at an absolute point (taking it off any other board). Putting a worktree
    on a board or moving it to another decides who sees it, so it needs `all` on the worktree."""
    require(actor, Role.member, 'add cards to boards')
    with db.transaction() as session:
        board = permissions.visible_board(session, actor, board_id)
        worktree = ids.resolve(session, Worktree, worktree_id, 'worktree')
        if worktree.archived:
            raise InvalidInput(f'Worktree {worktree.name} is archived: restore it first.')
        placement = session.exec(select(CardPlacement).where(CardPlacement.worktree_id == worktree.id)).first()
        if placement is None or placement.board_id != board.id:
            permissions.require_worktree(session, actor, worktree, Level.all, 'put it on a board')
        if placement is not None and placement.board_id != board.id:
            db.emit_after_commit(session, board_topic(placement.board_id),
                                 {'type': 'card_removed', 'id': worktree.id, 'by': actor.name})
            session.delete(placement)
            session.flush()
            placement = None
        if placement is None:
            placement = CardPlacement(board_id=board.id, worktree_id=worktree.id)
            session.add(placement)
        _set_position(session, placement, x, y, actor)
        emit_card(session, placement, actor)
        return placement


def move_in(session: Session, actor: User, board_id: str, worktree_id: str, x: float,
            y: float) -> tuple[CardPlacement, Zone | None]:
    """Move a card to an absolute canvas point; it joins the zone under its centre (or none). Last write wins.

    Returns the placement and, when the card arrived in a zone it was not in, that zone (agor.triggers fires it).
    The user action is `agor.triggers.drop_card`."""
    placement = session.exec(select(CardPlacement).where(CardPlacement.worktree_id == worktree_id,
                                                         CardPlacement.board_id == board_id)).first()
    if placement is None:
        raise NotFound('That card is no longer on this board.')
    before = placement.zone_id
    zone = _set_position(session, placement, x, y, actor)
    emit_card(session, placement, actor)
    return placement, zone if zone is not None and zone.id != before else None


def remove_card(actor: User, board_id: str, worktree_id: str) -> None:
    require(actor, Role.member, 'remove cards from boards')
    with db.transaction() as session:
        placement = session.exec(select(CardPlacement).where(CardPlacement.worktree_id == worktree_id,
                                                             CardPlacement.board_id == board_id)).first()
        if placement is None:
            raise NotFound('That card is no longer on this board.')
        worktree = ids.load(session, Worktree, worktree_id, 'worktree')
        permissions.require_worktree(session, actor, worktree, Level.all, 'take it off the board')
        session.delete(placement)
        db.emit_after_commit(session, board_topic(board_id), {'type': 'card_removed', 'id': worktree_id,
                                                              'by': actor.name})


def zone_under_card(session: Session, board_id: str, x: float, y: float) -> Zone | None:
    """The zone a card placed at the absolute point (x, y) belongs to: the one under its centre."""
    zones = list(session.exec(select(Zone).where(Zone.board_id == board_id)).all())
    return zone_at(zones, _coord(x) + CARD_W / 2, _coord(y) + CARD_H / 2)


def _set_position(session: Session, placement: CardPlacement, x: float, y: float, actor: User) -> Zone | None:
    """Place the card and return the zone it is now in. Each arrival in a different zone counts one `zone_entry`."""
    x, y = _coord(x), _coord(y)
    zone = zone_under_card(session, placement.board_id, x, y)
    if zone is not None and zone.id != placement.zone_id:
        placement.zone_entry += 1
    placement.zone_id = zone.id if zone else None
    placement.x, placement.y = (x - zone.x, y - zone.y) if zone else (x, y)
    placement.updated_at = utcnow()
    placement.updated_by = actor.id
    session.flush()
    return zone


def card_origin(session: Session, placement: CardPlacement) -> tuple[float, float]:
    """The card's absolute top-left on its board."""
    zone = session.get(Zone, placement.zone_id) if placement.zone_id else None
    return placement.x + (zone.x if zone else 0), placement.y + (zone.y if zone else 0)


def _card_of(session: Session, placement: CardPlacement) -> dict[str, Any]:
    worktree = session.get(Worktree, placement.worktree_id)
    assert worktree is not None
    repo = session.get(Repo, worktree.repo_id)
    assert repo is not None
    counts = open_comment_counts(session, placement.board_id, worktree.id)
    chips = session_chips(session, [worktree.id])
    return card_view(placement, worktree, repo, counts.get(worktree.id, 0), chips.get(worktree.id, []))


# ---- validation helpers ----------------------------------------------------------------------------------------------

def load_board(session: Session, board_id: str) -> Board:
    board = session.get(Board, board_id)
    if board is None:
        raise NotFound('This board no longer exists.')
    return board


def _zone(session: Session, user: User, zone_id: Any) -> Zone:
    zone = session.get(Zone, zone_id) if isinstance(zone_id, str) else None
    if zone is None or not permissions.can_view_board(session, user, load_board(session, zone.board_id)):
        raise NotFound('This zone no longer exists.')
    return zone


def _clean_name(name: Any, what: str) -> str:
    if not isinstance(name, str) or not name.strip():
        raise InvalidInput(f'Give the {what} a name.')
    name = ' '.join(name.split())
    if len(name) > 80:
        raise InvalidInput(f'A {what} name has at most 80 characters.')
    return name


def _clean_color(color: Any) -> str:
    if not isinstance(color, str) or not COLOR.match(color):
        raise InvalidInput(f'{color!r} is not a colour like #0d9488.')
    return color.lower()


def _clean_icon(icon: Any) -> str:
    if not isinstance(icon, str) or not 0 < len(icon.strip()) <= 8:
        raise InvalidInput('The icon is one emoji.')
    return icon.strip()


def clean_point(x: Any, y: Any) -> tuple[float, float]:
    return _coord(x), _coord(y)


def _coord(value: Any) -> float:
    try:
        number = float(value)
    except (TypeError, ValueError):
        raise InvalidInput(f'{value!r} is not a number.') from None
    if not math.isfinite(number) or abs(number) > COORD_MAX:
        raise InvalidInput('That position is off the canvas.')
    return round(number, 1)


def _size(value: Any) -> float:
    number = _coord(value)
    if not ZONE_MIN <= number <= ZONE_MAX:
        raise InvalidInput(f'A zone is between {ZONE_MIN} and {ZONE_MAX} pixels wide and high.')
    return number
