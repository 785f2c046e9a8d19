"""What an agent may do through the app's MCP server (`/mcp`, pages/mcp_endpoint.py): the tools, as domain functions.

Every call starts with `caller`: the bearer token (agor.agent_tokens) must be valid and its turn still the session's
running turn, and the user the session runs as (its creator) is loaded as they are NOW: a deactivated account is
refused, a demoted one can do what its role allows today. The tools then call the same service functions the UI
calls, as that user, so every rule (roles, worktree levels, private boards) applies unchanged. What they write is
marked as the user's agent's: comments show "Alice's agent" (`Comment.agent_session_id`), and a pulse carries the
agent's reason. Results are plain JSON-able values; a DomainError is the tool's error message.
"""
from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from sqlmodel import select

from . import agent_sessions, agent_tokens, approvals, boards, comments, db, repos
from .auth import require
from .config import Settings
from .errors import Forbidden, InvalidInput, NotFound
from .models import AgentSession, CardPlacement, Role, SessionTurn, User, utcnow
from .models.agent_sessions import RUNNING
from .runtimes.base import APP_MCP_SERVER, McpServer, shorten

SERVER_NAME = APP_MCP_SERVER  # how every run's CLI knows the app's MCP server (its tools: mcp__agor__… in Claude Code)
APPROVAL_TOOL = 'approve'  # Claude Code's --permission-prompt-tool (mcp__agor__approve)
TRANSCRIPT_LIMIT = 200
REASON_LIMIT = 300


@dataclass(frozen=True)
class Caller:
    """The run calling: the user it acts as (loaded now), its session, turn, worktree and the worktree's board."""
    user: User
    session_id: str
    turn_id: str
    worktree_id: str
    board_id: str | None


def caller(settings: Settings, token: str) -> Caller:
    """Who is calling, checked now; InvalidToken (401) or Forbidden (a deactivated account) saying why not."""
    claims = agent_tokens.verify(settings, token)
    with db.read() as session:
        agent = session.get(AgentSession, claims.session_id)
        turn = session.get(SessionTurn, claims.turn_id)
        if agent is None or agent.created_by != claims.user_id:
            raise agent_tokens.InvalidToken('The session this token was made for no longer exists.')
        if turn is None or turn.session_id != agent.id or turn.status != 'running' or agent.status not in RUNNING:
            raise agent_tokens.InvalidToken('The run this token was made for has ended.')
        user = session.get(User, claims.user_id)
        if user is None or not user.active:
            raise Forbidden('The account this agent acts as is deactivated.')
        board_id = session.exec(select(CardPlacement.board_id)
                                .where(CardPlacement.worktree_id == agent.worktree_id)).first()
    return Caller(user, agent.id, turn.id, agent.worktree_id, board_id)


def run_server(settings: Settings, user_id: str, session_id: str, turn_id: str) -> tuple[McpServer, str]:
    """The app's MCP server as one turn's CLI gets it, and the turn's token (a secret: kept out of transcripts)."""
    token = agent_tokens.mint(settings, user_id, session_id, turn_id)
    return McpServer(SERVER_NAME, transport='http', url=settings.mcp_url,
                     headers={'Authorization': f'Bearer {token}'}), token


# ---- the tools -------------------------------------------------------------------------------------------------------

def list_boards(c: Caller) -> list[dict[str, Any]]:
    return [{'id': b['id'], 'name': b['name'], 'slug': b['slug'], 'cards': b['cards']}
            for b in boards.list_boards(c.user)]


def list_worktrees(c: Caller, board: str | None = None) -> list[dict[str, Any]]:
    """The worktrees the user sees; `board` (an id or slug) keeps those on that board."""
    found = repos.list_worktrees(c.user)
    if board:
        wanted = boards.get_board(c.user, board).id
        found = [w for w in found if w['board_id'] == wanted]
    return [{'id': w['id'], 'name': w['name'], 'branch': w['branch'], 'repo': w['repo'], 'board_id': w['board_id'],
             'yours': w['id'] == c.worktree_id} for w in found]


def read_comments(c: Caller, include_resolved: bool = False) -> list[dict[str, Any]]:
    """The threads on this session's worktree and on its sessions."""
    board_id = _board(c)
    mine = {s['id'] for s in agent_sessions.for_worktree(c.user, c.worktree_id)}
    threads = [t for t in comments.threads(c.user, board_id)
               if (t['target_type'] == 'worktree' and t['target_id'] == c.worktree_id)
               or (t['target_type'] == 'session' and t['target_id'] in mine)]
    return [{'thread': t['id'], 'on': f'{t["target_type"]} {t["target_label"]}', 'resolved': t['resolved'],
             'comments': [{'id': x['id'], 'author': x['author'], 'text': x['body'], 'at': x['created_at']}
                          for x in t['comments'] if not x['deleted']]}
            for t in threads if include_resolved or not t['resolved']]


def post_comment(c: Caller, text: str, reply_to: str | None = None) -> dict[str, Any]:
    """A new thread on the worktree's card, or a reply to a thread (`reply_to`: its id); @Name mentions notify."""
    if reply_to:
        comment = comments.reply(c.user, reply_to, text, agent_session=c.session_id)
    else:
        comment = comments.create(c.user, _board(c), text, target_type='worktree', target_id=c.worktree_id,
                                  agent_session=c.session_id)
    return {'id': comment.id, 'thread': comment.parent_id or comment.id}


def list_sessions(c: Caller) -> list[dict[str, Any]]:
    """This worktree's sessions (this one and its siblings)."""
    return [{'id': s['id'], 'title': s['title'], 'agent': s['runtime_label'], 'status': s['status'],
             'runs_as': s['creator'], 'this': s['id'] == c.session_id}
            for s in agent_sessions.for_worktree(c.user, c.worktree_id)]


def read_transcript(c: Caller, session_id: str | None = None, limit: int = 40) -> list[dict[str, Any]]:
    """The newest `limit` entries of this session's transcript, or of a sibling session (same worktree)."""
    wanted = session_id or c.session_id
    if not isinstance(limit, int) or not 1 <= limit <= TRANSCRIPT_LIMIT:
        raise InvalidInput(f'limit is a number from 1 to {TRANSCRIPT_LIMIT}.')
    if wanted not in {s['id'] for s in agent_sessions.for_worktree(c.user, c.worktree_id)}:
        raise NotFound('No such session in this worktree: an agent reads its own and its siblings\' transcripts.')
    entries = agent_sessions.transcript(c.user, wanted)[-limit:]
    return [{'kind': e['kind'], 'text': shorten(e['text'], 4000), **({'by': e['data']['by']} if 'by' in e['data']
                                                                      else {})} for e in entries]


def set_worktree_notes(c: Caller, notes: str) -> dict[str, Any]:
    current = repos.worktree_details(c.user, c.worktree_id)
    repos.update_worktree_details(c.user, c.worktree_id, notes=notes, issue_url=current['issue_url'],
                                  pr_url=current['pr_url'])
    return {'notes': notes.strip()}


def set_worktree_links(c: Caller, issue_url: str | None = None, pr_url: str | None = None) -> dict[str, Any]:
    """Set the issue and/or pull request link ('' clears one; a link not given stays)."""
    current = repos.worktree_details(c.user, c.worktree_id)
    issue = current['issue_url'] if issue_url is None else issue_url
    pull = current['pr_url'] if pr_url is None else pr_url
    worktree = repos.update_worktree_details(c.user, c.worktree_id, notes=current['notes'], issue_url=issue,
                                             pr_url=pull)
    return {'issue_url': worktree.issue_url, 'pr_url': worktree.pr_url}


def request_attention(c: Caller, reason: str) -> dict[str, Any]:
    """Pulse the worktree's card with the reason, for every viewer of its board until they look at this session."""
    require(c.user, Role.member, 'ask for attention')
    if not isinstance(reason, str) or not reason.strip():
        raise InvalidInput('Say why attention is needed.')
    with db.transaction() as session:
        agent = session.get(AgentSession, c.session_id)
        if agent is None:
            raise NotFound('That session no longer exists.')
        agent.attention_since, agent.attention_reason = utcnow(), shorten(' '.join(reason.split()), REASON_LIMIT)
        agent_sessions.publish_change(session, agent, c.user)
    return {'pulsing': True, 'reason': agent.attention_reason}


def request_approval(c: Caller, tool_name: str, tool_input: Any, timeout: float) -> dict[str, Any]:
    """The permission prompt: a pending request (agor.approvals); pages/mcp_endpoint.py then waits for it."""
    require(c.user, Role.member, 'run tools that need approval')
    return approvals.request(c.session_id, c.turn_id, tool_name, tool_input, timeout)


def _board(c: Caller) -> str:
    if c.board_id is None:
        raise NotFound('This worktree is not on a board: comments live on boards.')
    return c.board_id
