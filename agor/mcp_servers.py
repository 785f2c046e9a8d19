"""Instance MCP servers: admins define them; sessions select them; a run gets them with its creator's authority.

- Admins add, change and delete servers (`save_server`, `delete_server`; Test connection is `agor.mcp_probe`).
  Secrets (a stdio server's env, a header value, a pre-registered client secret) are sealed (`agor.secret_box`, owner
  'instance') and never listed back: a listing says only whether one is set.
- Everyone lists the servers (`list_servers`) and their own grant states (`grant_states`); users connect their own
  OAuth grants through `agor.mcp_oauth`.
- A session's creator selects servers (`set_session_servers`); `run_servers` turns the selection into the run's
  `McpServer`s as the creator: stdio servers with their env; http/sse servers without auth by their URL; header and
  OAuth servers through the app's proxy (`/mcp-proxy/<session>/<server>`) with a bearer that is valid only while that
  turn runs (`proxy_token`), so no lasting credential is written where the worktree's account can read it. An OAuth
  server the creator has no working grant for is left out, with a warning.
"""
from __future__ import annotations

import base64
import functools
import hashlib
import hmac
import json
import re
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any
from urllib.parse import urlparse

from sqlalchemy import delete
from sqlmodel import Session, col, select

from . import db, ids, mcp_sealed, permissions
from .auth import require
from .config import Settings, session_secret
from .errors import Forbidden, InvalidInput, NotFound
from .mcp_discovery import check_url
from .models import AgentSession, McpGrant, McpServer, Role, SessionMcpServer, SessionTurn, User, Worktree, utcnow
from .runtimes import base as runtime
from .user_secrets import box, env_name

TRANSPORTS = ('stdio', 'http', 'sse')
AUTHS = ('none', 'header', 'oauth')
HEADER_NAME = re.compile(r'^[A-Za-z0-9-]{1,128}$')


# ---- admins --------------------------------------------------------------------------------------------------------

def save_server(actor: User, server_id: str | None, fields: dict[str, Any], allow_loopback: bool) -> dict[str, Any]:
    """Add (`server_id` None) or change a server. Secret fields left out (or None) keep what is stored, except that a
    changed URL needs the header value / client secret entered again; an empty string clears them. `env` merges into
    the stored variables as a chat channel's do: a name with a value sets it, one with '' or None deletes it, names
    not sent stay."""
    require(actor, Role.admin, 'define MCP servers')
    with db.transaction() as session:
        server = McpServer(name='', transport='stdio', created_by=actor.id) if server_id is None else \
            ids.load(session, McpServer, server_id, 'MCP server')
        _apply(server, fields, allow_loopback)
        clash = session.exec(select(McpServer).where(McpServer.name == server.name, McpServer.id != server.id)).first()
        if clash is not None:
            raise InvalidInput(f'There is already an MCP server named {server.name}.')
        server.updated_at = utcnow()
        session.add(server)
        session.flush()
        return _view(server, admin=True)


def delete_server(actor: User, server_id: Any) -> None:
    """Delete a server, with every grant, client registration and session selection of it."""
    require(actor, Role.admin, 'delete MCP servers')
    with db.transaction() as session:
        session.delete(ids.load(session, McpServer, server_id, 'MCP server'))


def _apply(server: McpServer, fields: dict[str, Any], allow_loopback: bool) -> None:
    if not isinstance(fields, dict):
        raise InvalidInput('Send the server\'s fields.')
    name = str(fields.get('name', server.name) or '').strip()
    if not runtime.MCP_NAME.match(name):
        raise InvalidInput('A server name has letters, digits, "-" and "_" only (at most 64).')
    if name.lower() == runtime.APP_MCP_SERVER:
        raise InvalidInput(f'The name "{runtime.APP_MCP_SERVER}" is the app\'s own MCP server: choose another.')
    transport = fields.get('transport', server.transport)
    if transport not in TRANSPORTS:
        raise InvalidInput('Choose the transport stdio, http or sse.')
    auth = fields.get('auth', server.auth) if transport != 'stdio' else 'none'
    if auth not in AUTHS:
        raise InvalidInput('Choose the authentication none, header or oauth.')
    server.name, server.transport, server.auth = name, transport, auth
    server.enabled = bool(fields.get('enabled', server.enabled))
    sealer = box()
    if transport == 'stdio':
        command = str(fields.get('command', server.command) or '').strip()
        args = fields.get('args', server.args)
        if not command:
            raise InvalidInput('A stdio server needs a command.')
        if not isinstance(args, list) or not all(isinstance(arg, str) for arg in args):
            raise InvalidInput('Arguments are a list of strings.')
        server.command, server.args, server.url = command, list(args), None
        if fields.get('env') is not None:  # merged: a name with a value sets it, with '' or None deletes it
            changes = fields['env']
            if not isinstance(changes, dict) or not all(v is None or isinstance(v, str) for v in changes.values()):
                raise InvalidInput('The environment is NAME=value pairs.')
            env = stdio_env(server)
            for key, value in changes.items():
                if value:
                    env[env_name(key)] = value
                else:
                    env.pop(env_name(key), None)
            server.env = mcp_sealed.seal(sealer, server, 'env', json.dumps(env)) if env else None
        server.header_name = server.header_value = server.client_id = server.client_secret = None
        return
    url = str(fields.get('url', server.url) or '').strip()
    check_url(url, allow_loopback, 'MCP server URL')
    moved = server.url is not None and url != server.url  # a secret stored for the old URL is not sent to the new
    server.url, server.command, server.args, server.env = url, None, [], None
    if auth == 'header':
        header = str(fields.get('header_name', server.header_name) or 'Authorization').strip()
        if not HEADER_NAME.match(header):
            raise InvalidInput('A header name has letters, digits and "-" only.')
        server.header_name = header
        if fields.get('header_value') is not None:
            value = str(fields['header_value'])
            server.header_value = mcp_sealed.seal(sealer, server, 'header_value', value)
        elif moved and server.header_value:
            raise InvalidInput('The URL changed: enter the header value again (the stored one was for the old URL).')
        if not server.header_value:
            raise InvalidInput('Header authentication needs the header\'s value.')
    else:
        server.header_name = server.header_value = None
    if auth == 'oauth':
        client_id = fields.get('client_id', server.client_id)
        server.client_id = str(client_id).strip() or None if client_id is not None else None
        if fields.get('client_secret') is not None:
            secret = str(fields['client_secret'])
            server.client_secret = mcp_sealed.seal(sealer, server, 'client_secret', secret)
        elif moved and server.client_secret:
            raise InvalidInput('The URL changed: enter the client secret again (the stored one was for the old URL).')
        scopes = fields.get('scopes', server.scopes)
        server.scopes = ' '.join(str(scopes).split()) or None if scopes is not None else None
        server.send_resource = bool(fields.get('send_resource', server.send_resource))
    else:
        server.client_id = server.client_secret = server.scopes = None


# ---- everyone ------------------------------------------------------------------------------------------------------

def list_servers(actor: User) -> list[dict[str, Any]]:
    """The instance's servers; admins also see how each is configured: its URL or command, and its secrets only as
    'set'."""
    with db.read() as session:
        servers = session.exec(select(McpServer).order_by(col(McpServer.name))).all()
    return [_view(server, admin=actor.has(Role.admin)) for server in servers]


def grant_states(actor: User) -> dict[str, dict[str, Any]]:
    """For every OAuth server: the actor's own grant, {'status': connected | needs_reauth | not_connected, ...}."""
    with db.read() as session:
        servers = session.exec(select(McpServer).where(McpServer.auth == 'oauth')).all()
        grants = {grant.server_id: grant for grant in session.exec(
            select(McpGrant).where(McpGrant.user_id == actor.id)).all()}
    states: dict[str, dict[str, Any]] = {}
    for server in servers:
        grant = grants.get(server.id)
        states[server.id] = {'status': 'not_connected'} if grant is None else {
            'status': grant.status, 'expires_at': grant.expires_at.isoformat() if grant.expires_at else None,
            'scope': grant.scope, 'error': grant.last_error}
    return states


def authenticated_server_ids(actor: User) -> list[str]:
    """`userAuthenticatedMcpServerIds`: the OAuth servers the actor has a working grant for."""
    return sorted(server_id for server_id, state in grant_states(actor).items() if state['status'] == 'connected')


def session_servers(actor: User, session_id: Any) -> dict[str, Any]:
    """The enabled servers a session may select, those it selected, and the selected OAuth servers its creator has
    no working grant for (they are left out of its runs)."""
    with db.read() as session:
        agent = ids.load(session, AgentSession, session_id, 'session')
        worktree = session.get(Worktree, agent.worktree_id)
        if worktree is None or permissions.worktree_level(session, actor, worktree) is None:
            raise NotFound('That session no longer exists.')  # as for every session the actor may not see
        available = session.exec(select(McpServer).where(col(McpServer.enabled).is_(True))
                                 .order_by(col(McpServer.name))).all()
        chosen = _selected(session, agent.id)
        missing = _missing(session, agent.created_by, [s for s in available if s.id in chosen])
    return {'available': [{'id': s.id, 'name': s.name, 'auth': s.auth} for s in available],
            'selected': [s.id for s in available if s.id in chosen], 'missing': [s.name for s in missing]}


def set_session_servers(actor: User, session_id: Any, server_ids: Any) -> None:
    """Which servers the session gets from its next run on (its creator only: they run with the creator's grants)."""
    require(actor, Role.member, 'choose MCP servers for sessions')
    with db.transaction() as session:
        agent = ids.load(session, AgentSession, session_id, 'session')
        if agent.created_by != actor.id:
            raise Forbidden("Only the session's creator chooses its MCP servers: it uses the creator's grants.")
        choose(session, agent.id, server_ids)


def choose(session: Session, session_id: str, server_ids: list[str]) -> None:
    """Set the session's selection inside the caller's transaction (the caller checked it is the creator's)."""
    if not isinstance(server_ids, list) or not all(isinstance(i, str) for i in server_ids):
        raise InvalidInput('Choose MCP servers by id.')
    if set(server_ids) - _enabled(session):
        raise InvalidInput('That MCP server does not exist or is disabled.')
    attach(session, session_id, server_ids)


def attach(session: Session, session_id: str, server_ids: list[str]) -> None:
    """The session's selection: those of `server_ids` that exist and are enabled (a gateway channel's servers, some
    perhaps deleted since the channel was set up)."""
    session.execute(delete(SessionMcpServer).where(col(SessionMcpServer.session_id) == session_id))
    for server_id in sorted(set(server_ids) & _enabled(session)):
        session.add(SessionMcpServer(session_id=session_id, server_id=server_id))


def _enabled(session: Session) -> set[str]:
    return {s.id for s in session.exec(select(McpServer).where(col(McpServer.enabled).is_(True))).all()}


# ---- runs ------------------------------------------------------------------------------------------------------------

@dataclass
class RunServers:
    servers: list[runtime.McpServer]
    warnings: list[str]
    secrets: list[str]  # values to keep out of the transcript (stdio env values, proxy bearers)
    granted: list[str] = field(default_factory=list)  # the names of the servers called with the creator's grant


def with_grant(event: runtime.TranscriptEvent, servers: RunServers, user_name: str) -> runtime.TranscriptEvent:
    """A tool call of an OAuth server says whose grant made it (the session's creator's)."""
    if event.kind != 'tool_call' or event.data.get('server') not in servers.granted:
        return event
    return runtime.TranscriptEvent(event.kind, f'{event.text} · {user_name}\'s grant', {**event.data,
                                                                                       'grant': user_name})


def run_servers(settings: Settings, session_id: str, turn_id: str, creator: User) -> RunServers:
    """The session's selected servers for one turn, as its creator has them (see the module's docstring)."""
    result = RunServers([], [], [])
    with db.read() as session:
        chosen = _selected(session, session_id)
        servers = session.exec(select(McpServer).where(col(McpServer.id).in_(chosen), col(McpServer.enabled).is_(True))
                               .order_by(col(McpServer.name))).all() if chosen else []
        missing = {s.id for s in _missing(session, creator.id, servers)}
    for server in servers:
        if server.id in missing:
            result.warnings.append(f'MCP server {server.name} left out: {creator.name} has no working grant for it '
                                   '(Settings → MCP authorizations → Connect).')
        elif server.transport == 'stdio':
            env = stdio_env(server)
            result.secrets += list(env.values())
            result.servers.append(runtime.McpServer(server.name, 'stdio', server.command, list(server.args), env))
        elif server.auth == 'none':
            result.servers.append(runtime.McpServer(server.name, server.transport, url=server.url))  # type: ignore
        else:
            bearer = proxy_token(settings, session_id, turn_id, server.id)
            result.secrets.append(bearer)
            if server.auth == 'oauth':
                result.granted.append(server.name)
            result.servers.append(runtime.McpServer(
                server.name, server.transport, url=f'{app_url(settings)}/mcp-proxy/{session_id}/{server.name}',  # type: ignore
                headers={'Authorization': f'Bearer {bearer}'}))
    return result


def app_url(settings: Settings) -> str:
    """Where the agent CLIs reach the app: the origin of `settings.mcp_url` (AGOR_MCP_URL, else derived from the
    listening address in agor.config), where they reach the app's own MCP server too."""
    origin = urlparse(settings.mcp_url)
    return f'{origin.scheme}://{origin.netloc}'


def proxy_token(settings: Settings, session_id: str, turn_id: str, server_id: str) -> str:
    body = f'{session_id}.{turn_id}.{server_id}'
    return f'{body}.{_mac(settings, body)}'


@dataclass
class ProxyTarget:
    name: str
    url: str
    transport: str
    auth: str
    server_id: str
    user_id: str  # whose grant the call uses: the session's creator
    headers: dict[str, str]  # header auth's header (OAuth: the token is fetched per call)


def proxy_target(settings: Settings, session_id: str, server_name: str, bearer: str) -> ProxyTarget:
    """What the proxy forwards a call to and as whom, if `bearer` is the token of a turn of this session that is
    running now and the session selected this server; Forbidden otherwise."""
    parts = bearer.split('.')
    if len(parts) != 4 or not hmac.compare_digest(parts[3], _mac(settings, '.'.join(parts[:3]))) or \
            parts[0] != session_id:
        raise Forbidden('This MCP proxy token is not valid.')
    _, turn_id, server_id = parts[:3]
    with db.read() as session:
        turn = session.get(SessionTurn, turn_id)
        agent = session.get(AgentSession, session_id)
        server = session.get(McpServer, server_id)
        selected = server_id in _selected(session, session_id)
        creator = session.get(User, agent.created_by) if agent is not None and agent.created_by else None
    if turn is None or agent is None or turn.session_id != session_id or turn.status != 'running':
        raise Forbidden('This MCP proxy token belongs to a run that has ended.')
    if creator is None or not creator.active:
        raise Forbidden('The session\'s creator was deactivated or removed: their grants and server secrets are no '
                        'longer used.')
    if server is None or server.name != server_name or not server.enabled or not selected or \
            server.transport == 'stdio':
        raise Forbidden('This session has no such MCP server (any more).')
    return ProxyTarget(server.name, server.url or '', server.transport, server.auth, server.id, agent.created_by,
                       header(server) if server.auth == 'header' else {})


def announced(settings: Settings, session_id: str, target: ProxyTarget, path: str) -> str:
    """The proxy's `/o/…` tail for the message endpoint an SSE server announced (`path`: a path on its origin, with
    its query): `<mac>/<path>`, the MAC binding that path to this session and server, so the proxy forwards to that
    path only (and no process needs to remember it)."""
    return f'{_mac(settings, f"{session_id}.{target.server_id}.{path}")}{path}'


def upstream_url(settings: Settings, session_id: str, target: ProxyTarget, rest: str, query: str) -> str:
    """The server's URL; or for `rest` (`announced`'s tail) the SSE server's announced message path on its own origin.
    Any other path is Forbidden: the proxy adds the creator's credential, so it goes nowhere else on that origin."""
    tail = f'?{query}' if query else ''
    if not rest:
        return f'{target.url}{tail}'
    mac, _, path = rest.partition('/')
    path = f'/{path}{tail}'
    expected = _mac(settings, f'{session_id}.{target.server_id}.{path}')
    if target.transport != 'sse' or not hmac.compare_digest(mac, expected):
        raise Forbidden('The MCP proxy forwards only to the server\'s URL and the message endpoint it announced.')
    origin = urlparse(target.url)
    return f'{origin.scheme}://{origin.netloc}{path}'


# ---- helpers ---------------------------------------------------------------------------------------------------------

def _view(server: McpServer, *, admin: bool) -> dict[str, Any]:
    view = {'id': server.id, 'name': server.name, 'transport': server.transport, 'auth': server.auth,
            'enabled': server.enabled}
    if admin:  # a URL often carries a key (servers without auth): admins only
        view['url'] = server.url
        env_names = sorted(stdio_env(server))
        view.update(command=server.command, args=list(server.args), env_names=env_names,
                    header_name=server.header_name, header_set=bool(server.header_value), client_id=server.client_id,
                    client_secret_set=bool(server.client_secret), scopes=server.scopes,
                    send_resource=server.send_resource)
    return view


def stdio_env(server: McpServer) -> dict[str, str]:
    return json.loads(mcp_sealed.unseal(box(), server, 'env') or '{}')


def header(server: McpServer) -> dict[str, str]:
    return {server.header_name or 'Authorization': mcp_sealed.unseal(box(), server, 'header_value') or ''}


def _selected(session: Session, session_id: str) -> set[str]:
    return set(session.exec(select(SessionMcpServer.server_id).where(SessionMcpServer.session_id == session_id)))


def _missing(session: Session, user_id: str, servers: list[McpServer]) -> list[McpServer]:
    """The OAuth servers among `servers` the user has no connected grant for."""
    connected = set(session.exec(select(McpGrant.server_id).where(McpGrant.user_id == user_id,
                                                                  McpGrant.status == 'connected')))
    return [server for server in servers if server.auth == 'oauth' and server.id not in connected]


def _mac(settings: Settings, body: str) -> str:
    key = _proxy_key(settings.data_dir)
    return base64.urlsafe_b64encode(hmac.new(key, body.encode(), hashlib.sha256).digest()).decode().rstrip('=')


@functools.lru_cache(maxsize=8)
def _proxy_key(data_dir: Path) -> bytes:
    """Derived from the session secret, read once per data dir (not from disk on every proxied call)."""
    return hashlib.sha256(b'agor mcp proxy\0' + session_secret(data_dir).encode()).digest()

