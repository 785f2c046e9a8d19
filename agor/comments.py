"""Spatial comments: threads on a board, a zone, a worktree or a session, optionally pinned to a point.

Every write is one transaction, then one `comments` event on the board topic (and a `card` event when a
worktree's open-thread count changes). The author and reactor are always the acting user.
"""
from __future__ import annotations

from typing import Any

from sqlmodel import Session, col, select

from . import auth, canvas, comment_text, db, ids, notifications, permissions
from .auth import require
from .errors import Forbidden, InvalidInput, NotFound
from .events import CommentsChanged, topic
from .models import AgentSession, Board, CardPlacement, Comment, CommentReaction, Role, User, Worktree, Zone, utcnow

TARGETS = ('board', 'zone', 'worktree', 'session')
GROUPS = {'board': 'Board', 'zone': 'Zones', 'worktree': 'Worktrees', 'session': 'Sessions'}
EMOJIS = ('👍', '❤️', '🎉', '😄', '😕', '👀', '🚀')
FILTERS = ('active', 'resolved', 'mine', 'mentions')


# ---- writes ----------------------------------------------------------------------------------------------------------

def create(actor: User, board_id: str, body: str, *, target_type: str = 'board', target_id: str | None = None,
           pin: tuple[float, float] | None = None, agent_session: str | None = None) -> Comment:
    """Start a thread. `pin` is an absolute canvas point; on a zone or worktree it is stored relative to it.
    `agent_session`: the actor's agent wrote it, in that session (through the app's MCP server)."""
    require(actor, Role.member, 'comment')
    text = _clean(body)
    if target_type not in TARGETS:
        raise InvalidInput(f'Comments attach to a {", ".join(TARGETS)}; not to {target_type!r}.')
    with db.transaction() as session:
        board = permissions.visible_board(session, actor, board_id)
        if target_type == 'board':
            target_id = None
            offset = (0.0, 0.0)
        else:
            if not target_id:
                raise InvalidInput(f'Which {target_type} is this comment on?')
            offset = _anchor(session, board.id, target_type, target_id)
        comment = Comment(board_id=board.id, author_id=actor.id, body=text, target_type=target_type,
                          target_id=target_id, mentions=_mentions(session, text), agent_session_id=agent_session)
        if pin is not None:
            comment.pin_x, comment.pin_y = canvas.clean_point(pin[0] - offset[0], pin[1] - offset[1])
        return _post(session, actor, board, comment, root=comment)


def reply(actor: User, comment_id: str, body: str, *, agent_session: str | None = None) -> Comment:
    require(actor, Role.member, 'reply to comments')
    text = _clean(body)
    with db.transaction() as session:
        root = _comment(session, actor, comment_id)
        if root.parent_id is not None:
            raise InvalidInput('Reply to the thread, not to a reply: threads have two levels.')
        if root.deleted:
            raise InvalidInput('This thread was deleted; start a new one.')
        comment = Comment(board_id=root.board_id, parent_id=root.id, author_id=actor.id, body=text,
                          target_type=root.target_type, target_id=root.target_id, mentions=_mentions(session, text),
                          agent_session_id=agent_session)
        root.updated_at = utcnow()
        return _post(session, actor, ids.load(session, Board, root.board_id, 'board'), comment, root=root)


def _post(session: Session, actor: User, board: Board, comment: Comment, *, root: Comment) -> Comment:
    """Store a new comment (a thread's first, or a reply to `root`): who is mentioned or follows it is notified."""
    session.add(comment)
    session.flush()
    _notify_new(session, actor, board, comment, root=root)
    _changed(session, actor, root, by=writer(actor.name, comment))
    return comment


def edit(actor: User, comment_id: str, body: str) -> Comment:
    """Authors edit their own comments, admins any. Newly mentioned people are notified."""
    require(actor, Role.member, 'edit comments')
    text = _clean(body)
    with db.transaction() as session:
        comment = _comment(session, actor, comment_id)
        _require_author(actor, comment, 'edit')
        if comment.deleted:
            raise InvalidInput('A deleted comment cannot be edited.')
        if text != comment.body:
            before = set(comment.mentions)
            comment.body, comment.edited, comment.updated_at = text, True, utcnow()
            comment.mentions = _mentions(session, text)
            root = _root(session, comment)
            board = ids.load(session, Board, comment.board_id, 'board')
            for user_id in comment.mentions:
                if user_id not in before and user_id != actor.id:
                    notifications.add(session, user_id, 'mention', actor, board, comment,
                                      f'{actor.name} mentioned you on {board.name}')
            _changed(session, actor, root)
        return comment


def delete(actor: User, comment_id: str) -> None:
    """A root with replies becomes a "deleted" placeholder that keeps them; anything else is removed.
    Removing the last reply of such a placeholder removes the placeholder too."""
    require(actor, Role.member, 'delete comments')
    with db.transaction() as session:
        comment = _comment(session, actor, comment_id)
        _require_author(actor, comment, 'delete')
        root = _root(session, comment)
        if comment.parent_id is None and _has_replies(session, comment.id):
            comment.deleted, comment.body, comment.mentions, comment.updated_at = True, '', [], utcnow()
            for reaction in session.exec(select(CommentReaction).where(CommentReaction.comment_id == comment.id)):
                session.delete(reaction)
        else:
            session.delete(comment)
            session.flush()
            if root.id != comment.id and root.deleted and not _has_replies(session, root.id):
                session.delete(root)
        session.flush()
        _changed(session, actor, root)


def set_resolved(actor: User, comment_id: str, resolved: bool) -> Comment:
    require(actor, Role.member, 'resolve threads')
    with db.transaction() as session:
        root = _comment(session, actor, comment_id)
        if root.parent_id is not None:
            raise InvalidInput('Only a thread (its first comment) is resolved, not a reply.')
        if root.resolved != resolved:
            root.resolved = resolved
            root.resolved_by, root.resolved_at = (actor.id, utcnow()) if resolved else (None, None)
            session.flush()
            _changed(session, actor, root)
        return root


def toggle_reaction(actor: User, comment_id: str, emoji: str) -> bool:
    """Add the actor's reaction, or take it back if it is there. True when it was added."""
    require(actor, Role.member, 'react to comments')
    if emoji not in EMOJIS:
        raise InvalidInput(f'Pick one of {" ".join(EMOJIS)}.')
    with db.transaction() as session:
        comment = _comment(session, actor, comment_id)
        if comment.deleted:
            raise InvalidInput('This comment was deleted.')
        existing = session.exec(select(CommentReaction).where(
            CommentReaction.comment_id == comment.id, CommentReaction.user_id == actor.id,
            CommentReaction.emoji == emoji)).first()
        if existing is not None:
            session.delete(existing)
        else:
            db.put(session, CommentReaction(comment_id=comment.id, user_id=actor.id, emoji=emoji),
                   unique=('comment_id', 'user_id', 'emoji'))
        session.flush()
        _changed(session, actor, _root(session, comment))
        return existing is None


def detach_targets(session: Session, target_type: str, target_id: str, label: str,
                   origins: dict[str, tuple[float, float]]) -> None:
    """The zone, worktree or session is going away: its threads fall back to the board, marked with what they
    were on. `origins` gives the target's top-left per board id, so a pin stays where it was on the canvas."""
    for comment in session.exec(select(Comment).where(Comment.target_type == target_type,
                                                      Comment.target_id == target_id)):
        origin = origins.get(comment.board_id)
        if comment.pin_x is not None and origin is not None:
            comment.pin_x, comment.pin_y = comment.pin_x + origin[0], (comment.pin_y or 0) + origin[1]
        elif comment.pin_x is not None:
            comment.pin_x = comment.pin_y = None
        comment.target_type, comment.target_id, comment.detached_from = 'board', None, label[:120]
        if comment.parent_id is None:
            _emit_thread(session, comment, '')


# ---- reads -----------------------------------------------------------------------------------------------------------

def threads(user: User, board_id: str) -> list[dict[str, Any]]:
    """Every thread of the board, oldest first, with replies, reactions and where it is pinned."""
    require(user, Role.viewer, 'read comments')
    with db.read() as session:
        board = permissions.visible_board(session, user, board_id)
        comments = session.exec(select(Comment).where(Comment.board_id == board.id)
                                .order_by(col(Comment.created_at))).all()
        reactions = session.exec(select(CommentReaction).where(
            col(CommentReaction.comment_id).in_([c.id for c in comments])).order_by(col(CommentReaction.created_at))
        ).all() if comments else []
        people = {u.id: u for u in session.exec(select(User)).all()}
        zones = {z.id: z for z in session.exec(select(Zone).where(Zone.board_id == board.id))}
        on_board = set(session.exec(select(CardPlacement.worktree_id).where(CardPlacement.board_id == board.id)))
        worktree_ids = {c.target_id for c in comments if c.target_type == 'worktree' and c.target_id}
        worktrees = {w.id: w for w in session.exec(select(Worktree).where(col(Worktree.id).in_(worktree_ids)))} \
            if worktree_ids else {}
        session_ids = {c.target_id for c in comments if c.target_type == 'session' and c.target_id}
        agents = {a.id: a for a in session.exec(select(AgentSession).where(col(AgentSession.id).in_(session_ids)))} \
            if session_ids else {}
    by_comment: dict[str, list[CommentReaction]] = {}
    for reaction in reactions:
        by_comment.setdefault(reaction.comment_id, []).append(reaction)
    replies: dict[str, list[Comment]] = {}
    for comment in comments:
        if comment.parent_id:
            replies.setdefault(comment.parent_id, []).append(comment)
    result = []
    for root in (c for c in comments if c.parent_id is None):
        names = {'board': {None: board.name}, 'zone': {i: z.label for i, z in zones.items()},
                 'worktree': {i: w.name for i, w in worktrees.items()}, 'session': {i: a.title for i, a in agents.items()}}
        label = names[root.target_type].get(root.target_id, root.target_type)
        entries = [root, *replies.get(root.id, [])]
        result.append({
            'id': root.id, 'target_type': root.target_type, 'target_id': root.target_id, 'target_label': label,
            'group': GROUPS[root.target_type], 'detached_from': root.detached_from,
            'resolved': root.resolved, 'resolved_by': _name(people, root.resolved_by),
            'pin': _pin(root, zones, on_board),
            'comments': [_view(c, people, by_comment.get(c.id, [])) for c in entries],
            'updated_at': root.updated_at.isoformat(),
        })
    return result


def filter_threads(all_threads: list[dict[str, Any]], user_id: str, mode: str = 'active',
                   query: str = '') -> list[dict[str, Any]]:
    """The panel's filters: active (unresolved), resolved, mine (I wrote in it), mentions (someone mentioned me);
    `query` matches comment text and author names, case-insensitively."""
    if mode not in FILTERS:
        raise InvalidInput(f'Unknown filter {mode!r}.')
    needle = query.casefold().strip()
    chosen = []
    for thread in all_threads:
        entries = thread['comments']
        if mode == 'active' and thread['resolved'] or mode == 'resolved' and not thread['resolved']:
            continue
        if mode == 'mine' and not any(c['author_id'] == user_id for c in entries):
            continue
        if mode == 'mentions' and not any(user_id in c['mentions'] for c in entries):
            continue
        if needle and not any(needle in c['body'].casefold() or needle in c['author'].casefold() for c in entries):
            continue
        chosen.append(thread)
    return chosen


def grouped(some_threads: list[dict[str, Any]]) -> list[tuple[str, str, list[dict[str, Any]]]]:
    """(group, label, threads) in panel order: Board, then Zones, Worktrees, Sessions, each by label."""
    order = list(GROUPS.values())
    groups: dict[tuple[str, str], list[dict[str, Any]]] = {}
    for thread in some_threads:
        groups.setdefault((thread['group'], thread['target_label']), []).append(thread)
    keys = sorted(groups, key=lambda k: (order.index(k[0]), k[1].casefold()))
    return [(group, label, groups[(group, label)]) for group, label in keys]


def pins(all_threads: list[dict[str, Any]]) -> list[dict[str, Any]]:
    """What the canvas draws: open threads with a pin whose zone or card is on the board."""
    result = []
    for thread in all_threads:
        if thread['pin'] is None or thread['resolved']:
            continue
        first = thread['comments'][0]
        result.append({**thread['pin'], 'id': thread['id'], 'initials': first['initials'], 'color': first['color'],
                       'author': first['author'], 'count': len(thread['comments']),
                       'preview': comment_text.preview(first['body'], 80) if not first['deleted'] else 'deleted'})
    return result


def locate(user: User, comment_id: str) -> dict[str, Any]:
    """Where a deep link to a comment leads: its board, its thread, and what to pan to."""
    require(user, Role.viewer, 'read comments')
    with db.read() as session:
        comment = _comment(session, user, comment_id)
        root = _root(session, comment)
        board = ids.load(session, Board, root.board_id, 'board')
    return {'board_id': board.id, 'slug': board.slug, 'thread': root.id, 'comment': comment.id,
            'target_type': root.target_type, 'target_id': root.target_id}


def link(slug: str, comment_id: str) -> str:
    return f'/b/{slug}?comment={comment_id}'


def members(user: User) -> list[dict[str, str]]:
    """Who can be @mentioned: every active account (all of them see every board today)."""
    require(user, Role.viewer, 'list people')
    people = [p for p in auth.list_users() if p.active]
    return [{'id': p.id, 'name': p.name, 'initials': p.initials, 'color': p.avatar_color} for p in people]


# ---- helpers ---------------------------------------------------------------------------------------------------------

def _clean(body: Any) -> str:
    try:
        return comment_text.clean_body(body)
    except ValueError as error:
        raise InvalidInput(str(error)) from None


def _mentions(session: Session, text: str) -> list[str]:
    people = session.exec(select(User.id, User.name).where(User.active == True)).all()  # noqa: E712
    return comment_text.find_mentions(text, people)


def _notify_new(session: Session, actor: User, board: Board, comment: Comment, *, root: Comment) -> None:
    """Mentions first, then the thread's author (a reply), then the worktree's creator (a new thread on it);
    one entry per person, never for the actor."""
    told = {actor.id}
    who = writer(actor.name, comment)
    for user_id in comment.mentions:
        if user_id not in told:
            notifications.add(session, user_id, 'mention', actor, board, comment,
                              f'{who} mentioned you on {board.name}')
            told.add(user_id)
    if comment.parent_id is not None and root.author_id not in told and not root.deleted:
        notifications.add(session, root.author_id, 'reply', actor, board, comment,
                          f'{who} replied to your comment on {board.name}')
        told.add(root.author_id)
    if comment.parent_id is None and comment.target_type == 'worktree':
        worktree = session.get(Worktree, comment.target_id)
        if worktree is not None and worktree.created_by not in told:
            notifications.add(session, worktree.created_by, 'worktree_comment', actor, board, comment,
                              f'{who} commented on {worktree.name}')


def _changed(session: Session, actor: User, root: Comment, *, by: str | None = None) -> None:
    _emit_thread(session, root, by or actor.name)
    if root.target_type == 'worktree':
        placement = session.exec(select(CardPlacement).where(CardPlacement.worktree_id == root.target_id,
                                                             CardPlacement.board_id == root.board_id)).first()
        if placement is not None:
            canvas.emit_card(session, placement, actor)


def _emit_thread(session: Session, root: Comment, by: str) -> None:
    db.emit_after_commit(session, topic('board', root.board_id),
                         CommentsChanged(type='comments', thread=root.id, by=by))


def _anchor(session: Session, board_id: str, target_type: str, target_id: str) -> tuple[float, float]:
    """The canvas point a pin on this target is measured from (its top-left corner)."""
    if target_type == 'zone':
        zone = session.get(Zone, target_id)
        if zone is None or zone.board_id != board_id:
            raise NotFound('That zone is not on this board any more.')
        return zone.x, zone.y
    if target_type == 'worktree':
        worktree = ids.resolve(session, Worktree, target_id, 'worktree')
        placement = session.exec(select(CardPlacement).where(CardPlacement.worktree_id == worktree.id,
                                                             CardPlacement.board_id == board_id)).first()
        return canvas.card_origin(session, placement) if placement else (0.0, 0.0)
    agent = session.get(AgentSession, target_id)
    if agent is None:
        raise NotFound('That session no longer exists.')
    return 0.0, 0.0  # session threads are listed in the drawer, not pinned


def _pin(root: Comment, zones: dict[str, Zone], on_board: set[str]) -> dict[str, Any] | None:
    if root.pin_x is None or root.pin_y is None:
        return None
    if root.target_type == 'board':
        return {'anchor': 'board', 'target': None, 'dx': root.pin_x, 'dy': root.pin_y}
    if root.target_type == 'zone' and root.target_id in zones:
        return {'anchor': 'zone', 'target': root.target_id, 'dx': root.pin_x, 'dy': root.pin_y}
    if root.target_type == 'worktree' and root.target_id in on_board:
        return {'anchor': 'card', 'target': root.target_id, 'dx': root.pin_x, 'dy': root.pin_y}
    return None


def _view(comment: Comment, people: dict[str, User], reactions: list[CommentReaction]) -> dict[str, Any]:
    author = people.get(comment.author_id)
    name = author.name if author else 'Former member'
    mentioned = [people[u].name for u in comment.mentions if u in people]
    pills: dict[str, list[str]] = {}
    for reaction in reactions:
        pills.setdefault(reaction.emoji, []).append(reaction.user_id)
    return {
        'id': comment.id, 'parent_id': comment.parent_id, 'author_id': comment.author_id,
        'author': writer(name, comment), 'agent_session': comment.agent_session_id,
        'initials': author.initials if author else '?',
        'color': author.avatar_color if author else '#94a3b8', 'avatar': author.avatar_url if author else None,
        'body': comment.body, 'html': '' if comment.deleted else comment_text.render(comment.body, mentioned),
        'mentions': list(comment.mentions), 'deleted': comment.deleted, 'edited': comment.edited,
        'created_at': comment.created_at.isoformat(), 'updated_at': comment.updated_at.isoformat(),
        'reactions': [{'emoji': e, 'users': ids_, 'names': [_name(people, u) for u in ids_]}
                      for e, ids_ in pills.items()],
    }


def writer(name: str, comment: Comment) -> str:
    """Who the board says wrote a comment: the author, or the author's agent (through the app's MCP server)."""
    return f'{name}’s agent' if comment.agent_session_id else name


def _name(people: dict[str, User], user_id: str | None) -> str | None:
    if user_id is None:
        return None
    return people[user_id].name if user_id in people else 'Former member'


def _require_author(actor: User, comment: Comment, action: str) -> None:
    if comment.author_id != actor.id and not actor.has(Role.admin):
        raise Forbidden(f'Only its author or an admin can {action} this comment.')


def _comment(session: Session, user: User, comment_id: Any) -> Comment:
    """The comment, if the user may see its board; one on a board they cannot see looks like none at all."""
    comment = ids.load(session, Comment, comment_id, 'comment')
    try:
        permissions.visible_board(session, user, comment.board_id)
    except NotFound:
        raise NotFound('That comment no longer exists.') from None
    return comment


def _root(session: Session, comment: Comment) -> Comment:
    if comment.parent_id is None:
        return comment
    root = session.get(Comment, comment.parent_id)
    assert root is not None
    return root


def _has_replies(session: Session, root_id: str) -> bool:
    return session.exec(select(Comment.id).where(Comment.parent_id == root_id)).first() is not None


