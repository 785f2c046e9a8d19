"""A user links their own chat account: Settings → Chat accounts shows a one-time code; posted in a gateway channel,
it links the poster's external id on that channel to the user. Codes expire after CODE_MINUTES, work once, and only
their SHA-256 is stored; a new code replaces the user's previous one. An external id already linked stays as it is
(unlink first: here, or an admin)."""
from __future__ import annotations

import hashlib
import re
import secrets
from datetime import timedelta
from typing import Any

from sqlmodel import col, select

from .. import db, ids
from ..auth import require
from ..errors import Forbidden
from ..models import GatewayChannel, GatewayIdentity, GatewayLinkCode, Role, User, utcnow
from .origin import PLATFORMS

CODE_MINUTES = 10
PREFIX = 'agor-link-'
CODE = re.compile(r'^agor-link-[a-z2-7]{16}$')


def new_code(actor: User) -> dict[str, Any]:
    """A fresh one-time code for the actor (shown once; their previous code stops working)."""
    require(actor, Role.viewer, 'link chat accounts')
    code = PREFIX + ''.join(secrets.choice('abcdefghijklmnopqrstuvwxyz234567') for _ in range(16))
    expires = utcnow() + timedelta(minutes=CODE_MINUTES)
    with db.transaction() as session:
        db.put(session, GatewayLinkCode(user_id=actor.id, code_hash=_hash(code), expires_at=expires),
               unique=('user_id',), update=('code_hash', 'expires_at'))
    return {'code': code, 'minutes': CODE_MINUTES}


def linked(actor: User) -> list[dict[str, Any]]:
    """The actor's linked chat accounts: channel, platform, external id."""
    require(actor, Role.viewer, 'link chat accounts')
    with db.read() as session:
        pairs = session.exec(select(GatewayIdentity, GatewayChannel)
                             .join(GatewayChannel, col(GatewayChannel.id) == GatewayIdentity.channel_id)
                             .where(GatewayIdentity.user_id == actor.id)
                             .order_by(col(GatewayChannel.name))).all()
    return [{'id': link.id, 'channel': channel.name, 'platform': PLATFORMS.get(channel.platform, channel.platform),
             'external_id': link.external_id} for link, channel in pairs]


def unlink(actor: User, identity_id: str) -> None:
    """The actor's own linked account goes (an admin unlinks anyone's in the identity map)."""
    require(actor, Role.viewer, 'link chat accounts')
    with db.transaction() as session:
        link = ids.load(session, GatewayIdentity, identity_id, 'linked account')
        if link.user_id != actor.id:
            raise Forbidden('That chat account is linked to someone else.')
        session.delete(link)


def looks_like_code(text: str) -> bool:
    return bool(CODE.match(text.strip()))


def redeem(channel_id: str, external_id: str, code: str) -> str:
    """Link `external_id` on the channel to the owner of the code, which is used up; what to answer in the thread."""
    with db.transaction() as session:
        row = session.exec(select(GatewayLinkCode).where(GatewayLinkCode.code_hash == _hash(code.strip()))).first()
        if row is None or row.expires_at < utcnow():
            return ('That code is unknown, used or expired: make a new one in Agor under Settings → Chat accounts '
                    'and post it here.')
        owner = session.get(User, row.user_id)
        session.delete(row)
        if owner is None or not owner.active:
            return 'That code belongs to an account that is deactivated: nothing was linked.'
        existing = session.exec(select(GatewayIdentity).where(GatewayIdentity.channel_id == channel_id,
                                                              GatewayIdentity.external_id == external_id)).first()
        if existing is not None:
            who = session.get(User, existing.user_id)
            if existing.user_id == owner.id:
                return f'You are already linked to {owner.name} in Agor.'
            return (f'This chat account is already linked to {who.name if who else "another person"} in Agor: '
                    'unlink it first (Settings → Chat accounts, or an admin).')
        session.add(GatewayIdentity(channel_id=channel_id, external_id=external_id, user_id=owner.id))
        return (f'Linked: your messages here now run as {owner.name} in Agor. If that is not you, tell an admin '
                'at once.')


def _hash(code: str) -> str:
    return hashlib.sha256(code.encode()).hexdigest()

