"""`/boards`, their zones and card placements.

A placement change is the canvas's drop: `agor.triggers.drop_card` (the function the drag handler calls), so the card
moves live for every viewer and a zone's trigger fires exactly as it would for a drag. A card not yet on the board is
put there as "Add worktree" does (`agor.boards.place_card`)."""
from __future__ import annotations

from typing import Any

from fastapi import APIRouter, Response
from pydantic import BaseModel, Field

from agor import boards, canvas, triggers

from .base import Actor, CursorParam, LimitParam, Page, Point, paged, patch_of
from .worktrees import resolve_worktree


class BoardOut(BaseModel):
    id: str
    slug: str
    name: str
    description: str
    icon: str
    color: str
    private: bool
    cards: int | None = None


class BoardIn(BaseModel):
    name: str = Field(max_length=200)
    description: str = Field('', max_length=2000)
    icon: str = Field('dashboard', max_length=40)
    color: str = Field('#0d9488', max_length=16)


BoardPatch = patch_of(BoardIn, 'BoardPatch')


class ZoneOut(BaseModel):
    id: str
    label: str
    x: float
    y: float
    w: float
    h: float
    border_color: str
    background_color: str
    locked: bool
    trigger_template: str
    trigger_behavior: str
    trigger_runtime: str


class ZoneIn(BaseModel):
    label: str = Field('Zone', max_length=200)
    x: float = 0
    y: float = 0
    w: float = 480
    h: float = 320
    border_color: str = Field('#64748b', max_length=16)
    background_color: str = Field('#f1f5f9', max_length=16)


class ZonePatch(patch_of(ZoneIn, 'ZoneFields')):  # type: ignore[misc]
    """Only the fields sent change. An empty `trigger_template` makes the zone only organizational."""
    locked: bool | None = None
    trigger_template: str | None = Field(None, max_length=20000)
    trigger_behavior: str | None = Field(None, max_length=40)
    trigger_runtime: str | None = Field(None, max_length=40)


class SessionChip(BaseModel):
    id: str
    status: str
    label: str


class CardOut(BaseModel):
    """A card on the board: `x`, `y` are its absolute top-left on the canvas; `zone` the zone it is in."""
    worktree_id: str
    name: str
    branch: str
    repo: str
    x: float
    y: float
    zone: str | None
    open_threads: int
    sessions: list[SessionChip]


class FiringOut(BaseModel):
    """What the zone's trigger did: `started` a session, waits for the mover's `picking`, or `failed` (why)."""
    id: str
    status: str
    zone: str
    zone_id: str
    session_id: str | None
    prompt: str | None
    error: str | None
    sessions: list[dict[str, str]] | None = None  # picking: the mover's sessions of the worktree to choose from
    default_session: str | None = None


class PlacementOut(BaseModel):
    card: CardOut
    firing: FiringOut | None


class PickIn(BaseModel):
    session_id: str | None = None  # one of your sessions of the worktree; none: start a new one
    runtime: str | None = Field(None, max_length=40)


def routes(router: APIRouter) -> None:
    tags = ['boards']

    @router.get('/boards', response_model=Page[BoardOut], tags=tags)
    def list_boards(actor: Actor, cursor: CursorParam = None, limit: LimitParam = 50) -> dict:
        """The boards you may see, by name."""
        return paged([_board(b) for b in boards.list_boards(actor)], cursor, limit)

    @router.post('/boards', response_model=BoardOut, status_code=201, tags=tags)
    def create_board(actor: Actor, body: BoardIn) -> dict:
        return _board(boards.create_board(actor, body.name, body.description, body.icon, body.color))

    @router.get('/boards/{board}', response_model=BoardOut, tags=tags)
    def get_board(actor: Actor, board: str) -> dict:
        """A board by slug, id or id prefix."""
        return _board(boards.get_board(actor, board))

    @router.patch('/boards/{board}', response_model=BoardOut, tags=tags)
    def update_board(actor: Actor, board: str, body: BoardPatch) -> dict:
        found = boards.get_board(actor, board)
        return _board(boards.update_board(actor, found.id, **body.model_dump(exclude_none=True)))

    @router.get('/boards/{board}/zones', response_model=list[ZoneOut], tags=tags)
    def list_zones(actor: Actor, board: str) -> list[dict]:
        state = boards.board_state(actor, boards.get_board(actor, board).id)
        return [_zone(z) for z in state['zones']]

    @router.post('/boards/{board}/zones', response_model=ZoneOut, status_code=201, tags=tags)
    def create_zone(actor: Actor, board: str, body: ZoneIn) -> dict:
        zone = boards.create_zone(actor, boards.get_board(actor, board).id, **body.model_dump())
        return _zone_row(zone)

    @router.patch('/zones/{zone_id}', response_model=ZoneOut, tags=tags)
    def update_zone(actor: Actor, zone_id: str, body: ZonePatch) -> dict:
        changes = {k: v for k, v in body.model_dump(exclude_unset=True).items()
                   if v is not None or k in canvas.TRIGGER_FIELDS}  # null: unchanged (a trigger's: none)
        return _zone_row(boards.update_zone(actor, zone_id, **changes))

    @router.delete('/zones/{zone_id}', status_code=204, tags=tags, response_class=Response)
    def delete_zone(actor: Actor, zone_id: str) -> Response:
        """Cards in it stay where they are on the board."""
        boards.delete_zone(actor, zone_id)
        return Response(status_code=204)

    @router.get('/boards/{board}/placements', response_model=Page[CardOut], tags=tags)
    def list_placements(actor: Actor, board: str, cursor: CursorParam = None, limit: LimitParam = 100) -> dict:
        """The cards on the board, least recently moved first."""
        state = boards.board_state(actor, boards.get_board(actor, board).id)
        return paged(_cards(state), cursor, limit)

    @router.put('/boards/{board}/placements/{worktree}', response_model=PlacementOut, tags=tags)
    def place(actor: Actor, board: str, worktree: str, body: Point) -> dict:
        """Move the worktree's card to the absolute point (its top-left), as a drag drops it: it joins the zone
        under its centre, every viewer sees it move, and a zone trigger fires as for a drag. A card not on this
        board is put there (taking it off any other board), which needs the `all` level on the worktree."""
        found = boards.get_board(actor, board)
        worktree_id = resolve_worktree(actor, worktree)['id']
        on_board = any(c['id'] == worktree_id for c in boards.board_state(actor, found.id)['cards'])
        firing = None
        if on_board:
            firing = triggers.drop_card(actor, found.id, worktree_id, body.x, body.y)
        else:
            boards.place_card(actor, found.id, worktree_id, body.x, body.y)
        card = next(c for c in _cards(boards.board_state(actor, found.id)) if c['worktree_id'] == worktree_id)
        return {'card': card, 'firing': firing}

    @router.delete('/boards/{board}/placements/{worktree}', status_code=204, tags=tags, response_class=Response)
    def remove(actor: Actor, board: str, worktree: str) -> Response:
        """Take the card off the board (the worktree stays)."""
        boards.remove_card(actor, boards.get_board(actor, board).id, resolve_worktree(actor, worktree)['id'])
        return Response(status_code=204)

    @router.post('/firings/{firing_id}/pick', response_model=FiringOut, tags=tags)
    def pick(actor: Actor, firing_id: str, body: PickIn) -> dict:
        """Answer a `picking` firing of your drop: prompt one of your sessions of the worktree, or start a new one."""
        return triggers.pick(actor, firing_id, body.session_id, body.runtime)


def _board(board: Any) -> dict[str, Any]:
    if isinstance(board, dict):
        return board
    return {'id': board.id, 'slug': board.slug, 'name': board.name, 'description': board.description,
            'icon': board.icon, 'color': board.color, 'private': board.private}


def _zone(view: dict[str, Any]) -> dict[str, Any]:
    return {**view, 'border_color': view['border'], 'background_color': view['background']}


def _zone_row(zone: Any) -> dict[str, Any]:
    return _zone(canvas.zone_view(zone))


def _cards(state: dict[str, Any]) -> list[dict[str, Any]]:
    zones = {z['id']: z for z in state['zones']}
    cards = []
    for card in state['cards']:
        zone = zones.get(card['zone'])
        cards.append({'worktree_id': card['id'], 'name': card['name'], 'branch': card['branch'], 'repo': card['repo'],
                      'x': card['x'] + (zone['x'] if zone else 0), 'y': card['y'] + (zone['y'] if zone else 0),
                      'zone': card['zone'], 'open_threads': card['comments'], 'sessions': card['sessions']})
    return cards
