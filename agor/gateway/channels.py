"""Gateway channels as admins configure them, the identity map, and what a channel gives the sessions it starts.

Secrets (signing secret, bot token, env values) are write-only: sealed with the instance key (`agor.secret_box`,
owner the channel id, purpose 'gateway') and never listed; a form leaves a secret field empty to keep it.
"""
from __future__ import annotations

import re
from dataclasses import dataclass, field
from typing import Any
from urllib.parse import urlparse

from sqlmodel import Session, col, select

from .. import db, ids, user_secrets
from ..auth import require
from ..errors import InvalidInput
from ..models import Board, CardPlacement, GatewayChannel, GatewayIdentity, GatewayThread, Role, User, Worktree, utcnow
from ..models.gateway import SLACK_API
from ..runtimes import registry
from ..secret_box import SecretBox
from .origin import PLATFORMS

PURPOSE = 'gateway'
EXTERNAL_ID = re.compile(r'^[A-Za-z0-9._-]{1,64}$')
MAX_NAME = 80


@dataclass(frozen=True)
class Opened:
    """A channel with its secrets opened: only for verifying and answering its platform, never for display."""
    id: str
    platform: str
    name: str
    signing_secret: str = field(repr=False)
    bot_token: str = field(repr=False)
    api_base: str
    enabled: bool
    worktree_id: str
    runtime: str


# ---- what admins do ----------------------------------------------------------------------------------------------

def save_channel(actor: User, channel_id: str | None, fields: dict[str, Any]) -> dict[str, Any]:
    """Create (`channel_id` None) or change a channel. Secret fields left empty keep the stored value (a new channel
    needs both; a changed API base needs the bot token again); `env` maps names to new values (None deletes the
    variable, a missing name keeps it)."""
    require(actor, Role.admin, 'manage chat channels')
    name = _name(fields.get('name'))
    platform = fields.get('platform') or 'slack'
    if platform not in PLATFORMS:
        raise InvalidInput(f'The platform is one of {", ".join(PLATFORMS.values())}.')
    runtime = registry.get(fields.get('runtime') or 'claude-code').name
    api_base = _api_base(fields.get('api_base') or SLACK_API)
    server_ids = _server_ids(fields.get('mcp_server_ids') or [])
    env = fields.get('env') or {}
    if not isinstance(env, dict):
        raise InvalidInput('Channel variables are names with values.')
    checked_env = {user_secrets.env_name(key): (None if value is None else _secret(value, key))
                   for key, value in env.items()}
    secrets = {key: _secret(fields[key], key.replace('_', ' ')) for key in ('signing_secret', 'bot_token')
               if fields.get(key)}
    sealer = user_secrets.box()
    with db.transaction() as session:
        if channel_id is None:
            missing = [key.replace('_', ' ') for key in ('signing_secret', 'bot_token') if key not in secrets]
            if missing:
                raise InvalidInput(f'A new channel needs its {" and ".join(missing)}.')
            row = GatewayChannel(name=name, platform=platform, signing_secret='', bot_token='', board_id='',
                                 worktree_id='', runtime=runtime, created_by=actor.id)
        else:
            row = ids.load(session, GatewayChannel, channel_id, 'channel')
            if row.api_base != api_base and 'bot_token' not in secrets:
                raise InvalidInput('The API base changed: enter the bot token again (the stored one was for the old '
                                   'API base).')
        row.board_id, row.worktree_id = _target(session, fields.get('board_id'), fields.get('worktree_id'))
        row.name, row.platform, row.runtime, row.api_base = name, platform, runtime, api_base
        row.mcp_server_ids = server_ids
        row.enabled = bool(fields.get('enabled', True))
        row.updated_at = utcnow()
        for key, value in secrets.items():
            setattr(row, key, sealer.seal(row.id, PURPOSE, key, value))
        stored = dict(row.env)
        for key, value in checked_env.items():
            if value is None:
                stored.pop(key, None)
            else:
                stored[key] = sealer.seal(row.id, PURPOSE, f'env:{key}', value)
        row.env = stored
        session.add(row)
        session.flush()
        return _view(session, row)


def delete_channel(actor: User, channel_id: str) -> None:
    """The channel, its identity map and thread bindings go; the sessions it started stay on the board."""
    require(actor, Role.admin, 'manage chat channels')
    with db.transaction() as session:
        session.delete(ids.load(session, GatewayChannel, channel_id, 'channel'))  # the database cascades


def listing(actor: User) -> dict[str, Any]:
    """The admin page's listing in one read: every channel with its identity map, and the people one may link."""
    require(actor, Role.admin, 'manage chat channels')
    with db.read() as session:
        rows = session.exec(select(GatewayChannel).order_by(col(GatewayChannel.name))).all()
        return {'channels': [{**_view(session, row), 'identities': _identities(session, row.id)} for row in rows],
                'users': _linkable(session)}


def identities(actor: User, channel_id: str) -> list[dict[str, Any]]:
    require(actor, Role.admin, 'manage chat channels')
    with db.read() as session:
        return _identities(session, ids.load(session, GatewayChannel, channel_id, 'channel').id)


def linkable_users(actor: User) -> list[dict[str, str]]:
    require(actor, Role.admin, 'manage chat channels')
    with db.read() as session:
        return _linkable(session)


def _identities(session: Session, channel_id: str) -> list[dict[str, Any]]:
    pairs = session.exec(select(GatewayIdentity, User).join(User, col(User.id) == GatewayIdentity.user_id)
                         .where(GatewayIdentity.channel_id == channel_id)
                         .order_by(col(GatewayIdentity.external_id))).all()
    return [{'id': link.id, 'external_id': link.external_id, 'user_id': user.id, 'user': user.name,
             'email': user.email} for link, user in pairs]


def _linkable(session: Session) -> list[dict[str, str]]:
    users = session.exec(select(User).where(col(User.active).is_(True)).order_by(col(User.name))).all()
    return [{'id': user.id, 'label': f'{user.name} ({user.email})'} for user in users]


def map_identity(actor: User, channel_id: str, external_id: Any, user_id: Any) -> None:
    """The external user id on this channel acts as that app user (replacing an earlier mapping of it)."""
    require(actor, Role.admin, 'manage chat channels')
    external = external_id_of(external_id)
    with db.transaction() as session:
        row = ids.load(session, GatewayChannel, channel_id, 'channel')
        user = ids.load(session, User, user_id, 'person')
        link = session.exec(select(GatewayIdentity).where(GatewayIdentity.channel_id == row.id,
                                                          GatewayIdentity.external_id == external)).first()
        link = link or GatewayIdentity(channel_id=row.id, external_id=external, user_id=user.id)
        link.user_id = user.id
        session.add(link)


def unmap_identity(actor: User, identity_id: str) -> None:
    require(actor, Role.admin, 'manage chat channels')
    with db.transaction() as session:
        session.delete(ids.load(session, GatewayIdentity, identity_id, 'linked account'))


def targets(actor: User) -> list[dict[str, Any]]:
    """The worktrees on boards a channel may target: (board, worktree) pairs with their names."""
    require(actor, Role.admin, 'manage chat channels')
    with db.read() as session:
        rows = session.exec(select(CardPlacement, Board, Worktree)
                            .join(Board, col(Board.id) == CardPlacement.board_id)
                            .join(Worktree, col(Worktree.id) == CardPlacement.worktree_id)
                            .where(Worktree.archived == False)  # noqa: E712
                            .order_by(col(Board.name), col(Worktree.name))).all()
    return [{'board_id': board.id, 'worktree_id': worktree.id, 'label': f'{board.name} · {worktree.name}'}
            for _, board, worktree in rows]


# ---- what the gateway and sessions read --------------------------------------------------------------------------

def opened(channel_id: str) -> Opened | None:
    """The channel with its secrets opened, or None when there is no such channel."""
    with db.read() as session:
        row = session.get(GatewayChannel, channel_id) if isinstance(channel_id, str) else None
        if row is None:
            return None
        sealer = user_secrets.box()
        return Opened(row.id, row.platform, row.name, sealer.open(row.id, PURPOSE, 'signing_secret',
                                                                  row.signing_secret),
                      sealer.open(row.id, PURPOSE, 'bot_token', row.bot_token), row.api_base, row.enabled,
                      row.worktree_id, row.runtime)


def channel_of_session(session: Session, session_id: str) -> GatewayChannel | None:
    thread = session.exec(select(GatewayThread).where(GatewayThread.session_id == session_id)).first()
    return session.get(GatewayChannel, thread.channel_id) if thread else None


def env_for_session(session: Session, session_id: str | None) -> dict[str, str]:
    """The variables of the channel that started the session (opened), for its runs' env; {} for other sessions."""
    channel = channel_of_session(session, session_id) if session_id else None
    if channel is None or not channel.env:
        return {}
    sealer = user_secrets.box()
    return {name: sealer.open(channel.id, PURPOSE, f'env:{name}', value) for name, value in channel.env.items()}


def env_names_for_session(session: Session, session_id: str | None) -> set[str]:
    channel = channel_of_session(session, session_id) if session_id else None
    return set(channel.env) if channel else set()


def reseal(session: Session, old: SecretBox, new: SecretBox) -> int:
    """Every channel secret re-encrypted under `new` (agor.rotate_master_secret), in the caller's transaction."""
    count = 0
    for row in session.exec(select(GatewayChannel)):
        for key in ('signing_secret', 'bot_token'):
            setattr(row, key, new.seal(row.id, PURPOSE, key, old.open(row.id, PURPOSE, key, getattr(row, key))))
        row.env = {name: new.seal(row.id, PURPOSE, f'env:{name}', old.open(row.id, PURPOSE, f'env:{name}', value))
                   for name, value in row.env.items()}
        session.add(row)
        count += 2 + len(row.env)
    return count


# ---- helpers -----------------------------------------------------------------------------------------------------

def external_id_of(value: Any) -> str:
    if not isinstance(value, str) or not EXTERNAL_ID.match(value.strip()):
        raise InvalidInput('An external user id is the platform\'s id for the person (e.g. U0123ABCD for Slack).')
    return value.strip()


def _view(session: Session, row: GatewayChannel) -> dict[str, Any]:
    worktree = session.get(Worktree, row.worktree_id)
    board = session.get(Board, row.board_id)
    return {'id': row.id, 'platform': row.platform, 'name': row.name, 'board_id': row.board_id,
            'worktree_id': row.worktree_id, 'target': f'{board.name if board else "?"} · '
                                                      f'{worktree.name if worktree else "?"}',
            'runtime': row.runtime, 'env_names': sorted(row.env), 'mcp_server_ids': list(row.mcp_server_ids),
            'api_base': row.api_base, 'enabled': row.enabled, 'webhook_path': f'/gateway/{row.platform}/{row.id}'}


def _target(session: Session, board_id: Any, worktree_id: Any) -> tuple[str, str]:
    board = ids.load(session, Board, board_id, 'board')
    worktree = ids.load(session, Worktree, worktree_id, 'worktree')
    placed = session.exec(select(CardPlacement).where(CardPlacement.board_id == board.id,
                                                      CardPlacement.worktree_id == worktree.id)).first()
    if placed is None:
        raise InvalidInput(f'{worktree.name} is not on {board.name}: place it there first.')
    if worktree.archived:
        raise InvalidInput(f'{worktree.name} is archived.')
    return board.id, worktree.id


def _name(value: Any) -> str:
    if not isinstance(value, str) or not value.strip() or len(value.strip()) > MAX_NAME:
        raise InvalidInput(f'Name the channel (up to {MAX_NAME} characters).')
    return value.strip()


def _secret(value: Any, what: str) -> str:
    if not isinstance(value, str) or not value.strip() or len(value) > 4096 or '\0' in value:
        raise InvalidInput(f'Enter a value for {what}.')
    return value.strip()


def _api_base(value: Any) -> str:
    parsed = urlparse(value.strip()) if isinstance(value, str) else None
    if parsed is None or parsed.scheme not in {'http', 'https'} or not parsed.netloc or len(value) > 300:
        raise InvalidInput('The API base is an http(s) URL, e.g. https://slack.com/api.')
    return value.strip().rstrip('/')


def _server_ids(value: Any) -> list[str]:
    if isinstance(value, str):
        value = [part.strip() for part in value.split(',') if part.strip()]
    if not isinstance(value, list) or not all(isinstance(item, str) and len(item) <= 36 for item in value):
        raise InvalidInput('MCP servers are listed by id.')
    return list(dict.fromkeys(value))

