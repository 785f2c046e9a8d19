"""Boards, zones and worktree cards: every write is one transaction followed by one event on `board:<id>`.

What the canvas shows of them (the views, the geometry) is `agor.canvas`; a drop that may fire a zone's trigger is
`agor.triggers.drop_card`, which moves the card with `move_in`."""
from __future__ import annotations

import re
import unicodedata
from typing import Any

from sqlalchemy import func
from sqlmodel import Session, col, select

from . import canvas, comments, db, ids, permissions, terminals
from .auth import require
from .canvas import coord, zone_size
from .errors import Forbidden, InvalidInput, NotFound
from .events import AccessChanged, BoardChanged, BoardDeleted, CardRemoved, ZoneChanged, ZoneDeleted, topic
from .models import Board, BoardMember, CardPlacement, Role, User, Worktree, Zone, utcnow
from .permissions import Level

COLOR = re.compile(r'^#[0-9a-fA-F]{6}([0-9a-fA-F]{2})?$')
ICON_NAME = re.compile(r'[a-z][a-z0-9_]{0,15}')  # a Material icon (shipped with NiceGUI), not an emoji
ZONE_FIELDS = {'label', 'x', 'y', 'w', 'h', 'border_color', 'background_color', 'locked', *canvas.TRIGGER_FIELDS}


# ---- boards ---------------------------------------------------------------------------------------------------------

def list_boards(user: User) -> list[dict[str, Any]]:
    """The boards the user may see (agor.permissions: private boards only for their creator, admins, members)."""
    if not user.has(Role.viewer):
        return []
    with db.read() as session:
        hidden = permissions.hidden_board_ids(session, user)
        boards = [b for b in session.exec(select(Board).order_by(Board.name)).all() if b.id not in hidden]
        counts = dict(session.exec(select(CardPlacement.board_id, func.count()).group_by(CardPlacement.board_id)).all())
    return [{**canvas.board_view(b), 'cards': counts.get(b.id, 0)} for b in boards]


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


def create_board(actor: User, name: str, description: str = '', icon: str = 'dashboard',
                 color: str = '#0d9488') -> Board:
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
        db.emit_after_commit(session, topic('board', board.id), AccessChanged(
            type='access', private=board.private, created_by=board.created_by,
            members=permissions.member_ids(session, board.id), by=actor.name))
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
        db.emit_after_commit(session, topic('board', board.id),
                             BoardChanged(type='board', board=canvas.board_view(board), by=actor.name))
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
        db.emit_after_commit(session, topic('board', board.id), BoardDeleted(type='board_deleted', by=actor.name))


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

def board_state(user: User, board_id: str) -> dict[str, Any]:
    """The canvas of a board the user may see (agor.canvas.state)."""
    with db.read() as session:
        return canvas.state(session, permissions.visible_board(session, user, board_id))


# ---- zones -----------------------------------------------------------------------------------------------------------

def create_zone(actor: User, board_id: str, label: str = 'Zone', x: float = 0, y: float = 0,
                w: float = 480, h: float = 320, border_color: str = '#64748b',
                background_color: str = '#f1f5f9') -> Zone:
    require(actor, Role.member, 'create zones')
    with db.transaction() as session:
        board = permissions.visible_board(session, actor, board_id)
        zone = Zone(board_id=board.id, label=_clean_name(label, 'zone'), x=coord(x), y=coord(y), w=zone_size(w),
                    h=zone_size(h), border_color=_clean_color(border_color),
                    background_color=_clean_color(background_color))
        session.add(zone)
        _emit_zone(session, zone, actor)
        return zone


def update_zone(actor: User, zone_id: str, **changes: Any) -> Zone:
    """Move, resize, relabel, recolour, (un)lock a zone or set its trigger. A locked zone keeps its place and size.

    An empty trigger template makes the zone only organizational; a template must parse, use only the four
    variables and render against the sample worktree (agor.trigger_template)."""
    require(actor, Role.member, 'edit zones')
    unknown = set(changes) - ZONE_FIELDS
    if unknown:
        raise InvalidInput(f'Unknown zone fields: {", ".join(sorted(unknown))}.')
    trigger = canvas.trigger_settings(changes)  # before the transaction: a render may take up to a second
    with db.transaction() as session:
        zone = _zone(session, actor, zone_id)
        locked = bool(changes.get('locked', zone.locked))
        geometry = {k: v for k, v in changes.items() if k in {'x', 'y', 'w', 'h'} and v != getattr(zone, k)}
        if locked and geometry:
            raise Forbidden(f'Zone “{zone.label}” is locked: unlock it to move or resize it.')
        for key in ('x', 'y'):
            if key in geometry:
                setattr(zone, key, coord(geometry[key]))
        for key in ('w', 'h'):
            if key in geometry:
                setattr(zone, key, zone_size(geometry[key]))
        if 'label' in changes:
            zone.label = _clean_name(changes['label'], 'zone')
        if 'border_color' in changes:
            zone.border_color = _clean_color(changes['border_color'])
        if 'background_color' in changes:
            zone.background_color = _clean_color(changes['background_color'])
        zone.locked = locked
        for key, value in trigger.items():
            setattr(zone, key, value)
        _emit_zone(session, zone, actor)
        return zone


def _emit_zone(session: Session, zone: Zone, actor: User) -> None:
    db.emit_after_commit(session, topic('board', zone.board_id),
                         ZoneChanged(type='zone', zone=canvas.zone_view(zone), by=actor.name))


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
        comments.detach_targets(session, 'zone', zone.id, f'zone “{zone.label}”', {zone.board_id: (zone.x, zone.y)})
        session.delete(zone)
        session.flush()
        db.emit_after_commit(session, topic('board', zone.board_id),
                             ZoneDeleted(type='zone_deleted', id=zone.id, by=actor.name))
        for placement in moved:
            canvas.emit_card(session, placement, actor)


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
            emit_card_removed(session, placement.board_id, worktree.id, actor)
            session.delete(placement)
            session.flush()
            placement = None
        if placement is None:
            placement = CardPlacement(board_id=board.id, worktree_id=worktree.id)
            session.add(placement)
        _set_position(session, placement, x, y, actor)
        canvas.emit_card(session, placement, actor)
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
    canvas.emit_card(session, placement, actor)
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
        emit_card_removed(session, board_id, worktree_id, actor)


def emit_card_removed(session: Session, board_id: str, worktree_id: str, actor: User) -> None:
    db.emit_after_commit(session, topic('board', board_id),
                         CardRemoved(type='card_removed', id=worktree_id, by=actor.name))


def _set_position(session: Session, placement: CardPlacement, x: float, y: float, actor: User) -> Zone | None:
    """Place the card and return the zone it is now in. Each arrival in a different zone counts one `zone_entry`."""
    x, y = coord(x), coord(y)
    zone = canvas.zone_under_card(session, placement.board_id, x, y)
    if zone is not None and zone.id != placement.zone_id:
        placement.zone_entry += 1
    placement.zone_id = zone.id if zone else None
    placement.x, placement.y = (x - zone.x, y - zone.y) if zone else (x, y)
    placement.updated_at = utcnow()
    placement.updated_by = actor.id
    session.flush()
    return zone


# ---- validation helpers ----------------------------------------------------------------------------------------------

def _zone(session: Session, user: User, zone_id: Any) -> Zone:
    zone = session.get(Zone, zone_id) if isinstance(zone_id, str) else None
    if zone is None or not permissions.can_view_board(session, user, ids.load(session, Board, zone.board_id, 'board')):
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
    if not isinstance(icon, str) or not ICON_NAME.fullmatch(icon.strip()):
        raise InvalidInput('The icon is the name of a Material icon, e.g. "dashboard".')
    return icon.strip()
