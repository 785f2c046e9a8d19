"""Who may see a board and what a user may do with a worktree: the one place these rules live.

Boards: a board is visible to every active account unless it is private; a private board only to its creator,
admins, and the people its creator lists (BoardMember). Nothing of a board someone cannot see reaches them.

Worktrees: the creator (owner) of a worktree and admins have full access. Everyone else gets the worktree's level,
`others_can` (new worktrees start with the level of the board they are created on, else `session`):

    view     read its cards, sessions and transcripts
    session  also start their own sessions (and prompt and stop those)
    prompt   also prompt and stop other people's sessions; such a run still runs as the session's creator,
             with the creator's environment and keys, and the prompt is shown as the prompter's
    all      also edit, archive and delete it, and put it on a board or take it off

Instance viewers are read-only everywhere (`view` at most). A worktree on a private board a user cannot see does
not exist for them (its owner and admins still reach it).
"""
from __future__ import annotations

from collections.abc import Iterable
from enum import IntEnum
from typing import Any

from sqlmodel import Session, select

from . import db
from .errors import Forbidden, InvalidInput, NotFound
from .models import AgentSession, Board, BoardMember, CardPlacement, Role, User, Worktree


class Level(IntEnum):
    """What others may do with a worktree; each level includes the ones below it. `label` is how the UI names it."""
    label: str

    def __new__(cls, value: int, label: str) -> Level:
        level = int.__new__(cls, value)
        level._value_ = value
        level.label = label
        return level

    view = 0, 'View only'
    session = 1, 'Start their own sessions'
    prompt = 2, "Prompt and stop others' sessions"
    all = 3, 'Everything (edit, archive, delete)'


LEVEL_LABELS = {level.name: level.label for level in Level}  # what a level select offers: name -> label


def parse_level(value: Any) -> Level:
    if not isinstance(value, str) or value not in Level.__members__:
        raise InvalidInput(f'A permission level is one of {", ".join(Level.__members__)}.')
    return Level[value]


# ---- boards ----------------------------------------------------------------------------------------------------------

def board_visible(user: User, board: Board, is_member: bool) -> bool:
    """The rule itself, for callers that already know whether the user is on the board's member list."""
    if not user.has(Role.viewer):
        return False
    return not board.private or user.id == board.created_by or user.has(Role.admin) or is_member


def member_ids(session: Session, board_id: str) -> list[str]:
    return list(session.exec(select(BoardMember.user_id).where(BoardMember.board_id == board_id)).all())


def can_view_board(session: Session, user: User, board: Board) -> bool:
    if not board.private:
        return board_visible(user, board, False)
    member = session.exec(select(BoardMember.id).where(BoardMember.board_id == board.id,
                                                       BoardMember.user_id == user.id)).first()
    return board_visible(user, board, member is not None)


def hidden_board_ids(session: Session, user: User) -> set[str]:
    """The private boards this user may not see (for filtering lists in one query)."""
    if user.has(Role.admin):
        return set()
    private = session.exec(select(Board).where(Board.private == True)).all()  # noqa: E712
    if not private:
        return set()
    mine = set(session.exec(select(BoardMember.board_id).where(BoardMember.user_id == user.id)).all())
    return {b.id for b in private if not board_visible(user, b, b.id in mine)}


def visible_board(session: Session, user: User, board_id: Any) -> Board:
    """The board, if the user may see it. A private board looks exactly like one that does not exist."""
    board = session.get(Board, board_id) if isinstance(board_id, str) and board_id else None
    if board is None or not can_view_board(session, user, board):
        raise NotFound('This board no longer exists.')
    return board


def may_manage_board(user: User, board: Board) -> bool:
    """Who sets a board's privacy, its member list and the level its new worktrees start with."""
    return user.has(Role.member) and (user.id == board.created_by or user.has(Role.admin))


def require_manage_board(user: User, board: Board) -> None:
    if not may_manage_board(user, board):
        raise Forbidden('Only the creator of this board or an admin can change who sees it and its default level.')


# ---- worktrees -------------------------------------------------------------------------------------------------------

def worktree_level(session: Session, user: User, worktree: Worktree,
                   hidden_boards: Iterable[str] | None = None) -> Level | None:
    """What `user` may do with `worktree` now; None when it does not exist for them."""
    if not user.has(Role.viewer):
        return None
    full = user.id == worktree.created_by or user.has(Role.admin)
    if not full:
        board_id = session.exec(select(CardPlacement.board_id)
                                .where(CardPlacement.worktree_id == worktree.id)).first()
        hidden = hidden_board_ids(session, user) if hidden_boards is None else hidden_boards
        if board_id is not None and board_id in hidden:
            return None
    if not user.has(Role.member):
        return Level.view
    return Level.all if full else parse_level(worktree.others_can)


def level_of(user: User, worktree_id: str) -> Level | None:
    """`worktree_level` in a transaction of its own."""
    with db.read() as session:
        worktree = session.get(Worktree, worktree_id)
        return None if worktree is None else worktree_level(session, user, worktree)


def require_worktree_id(user: User, worktree_id: str, needed: Level, action: str) -> Level:
    """`require_worktree` in a transaction of its own."""
    with db.read() as session:
        worktree = session.get(Worktree, worktree_id)
        if worktree is None:
            raise NotFound('That worktree no longer exists.')
        return require_worktree(session, user, worktree, needed, action)


def require_worktree(session: Session, user: User, worktree: Worktree, needed: Level, action: str) -> Level:
    """Raise NotFound when the worktree does not exist for the user, Forbidden (saying why) below `needed`."""
    level = worktree_level(session, user, worktree)
    if level is None:
        raise NotFound('That worktree no longer exists.')
    if level < needed:
        raise Forbidden(refusal(session, user, worktree, needed, action))
    return level


def session_needs(user: User, agent: AgentSession) -> Level:
    """Your own session needs `session`; someone else's needs `prompt`."""
    return Level.session if agent.created_by == user.id else Level.prompt


def require_session(session: Session, user: User, agent: AgentSession, action: str) -> Worktree:
    """May `user` prompt or stop (`action`) this session? Returns its worktree."""
    worktree = session.get(Worktree, agent.worktree_id)
    if worktree is None:
        raise NotFound('That session no longer exists.')
    whose = 'your session' if agent.created_by == user.id else f"{_name(session, agent.created_by)}'s session"
    require_worktree(session, user, worktree, session_needs(user, agent), f'{action} {whose}')
    return worktree


def refusal(session: Session, user: User, worktree: Worktree, needed: Level, action: str) -> str:
    """Why not, in words: the user's role, or the worktree's level and who can change it."""
    if not user.has(Role.member):
        return f'Your role ({user.role}) only views worktrees; to {action} you need member or higher.'
    owner = _name(session, worktree.created_by)
    return (f'On {worktree.name} others may: {LEVEL_LABELS[worktree.others_can].lower()}. To {action} you need '
            f'“{LEVEL_LABELS[needed.name]}”; {owner} (its owner) or an admin can grant it.')


def worktree_rights(session: Session, user: User, worktree: Worktree) -> dict[str, Any]:
    """What the UI shows and enables for this user (the server checks every action again)."""
    level = require_worktree(session, user, worktree, Level.view, 'see it')
    owner = _name(session, worktree.created_by)

    def reason(needed: Level, action: str) -> str | None:
        return None if level >= needed else refusal(session, user, worktree, needed, action)
    manage = user.has(Role.member) and (user.id == worktree.created_by or user.has(Role.admin))
    return {'level': level.name, 'others_can': worktree.others_can, 'owner': owner,
            'is_owner': user.id == worktree.created_by,
            'start': reason(Level.session, 'start sessions'), 'edit': reason(Level.all, 'edit, move or archive it'),
            'set_level': None if manage else f'Only {owner} (its owner) or an admin sets what others may do.'}


def session_rights(session: Session, user: User, agent: AgentSession) -> dict[str, Any]:
    """May this user prompt and stop this session, and if not, why (for disabled controls)."""
    try:
        require_session(session, user, agent, 'prompt or stop')
        return {'prompt': None}
    except (Forbidden, NotFound) as refused:  # it describes; the reads that call it decide who may see the session
        return {'prompt': refused.message}


def require_set_level(session: Session, user: User, worktree: Worktree) -> None:
    rights = worktree_rights(session, user, worktree)
    if rights['set_level']:
        raise Forbidden(rights['set_level'])


def level_for_new_worktree(session: Session, user: User, board_id: str | None) -> str:
    """A worktree created on a board starts with the board's level; elsewhere with `session`."""
    if not board_id:
        return Level.session.name
    return visible_board(session, user, board_id).others_can


def _name(session: Session, user_id: str) -> str:
    person = session.get(User, user_id)
    return person.name if person else 'its former owner'

