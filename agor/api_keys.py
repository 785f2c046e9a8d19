"""Personal API keys: a user makes one for scripts (the HTTP API as themselves), sees it once, and may revoke it.

A key is `agor_<8 hex: public prefix>_<43 random characters>`. The prefix finds the row; what is stored of the rest
is HMAC-SHA256 over the whole key under a server pepper (`config.api_key_pepper`, a 0600 file in the data dir, not in
the database), compared in constant time. Not argon2: a key carries 256 random bits, so no guess can be checked
faster by an attacker than by us, and a slow hash would only cost every API request tens of milliseconds of CPU
(a lever for anyone who sends many requests); the pepper means a stolen database alone cannot check a key either.
"""
from __future__ import annotations

import hashlib
import hmac
import re
import secrets
from datetime import timedelta
from typing import Any

from sqlmodel import col, select

from . import db
from .auth import require
from .config import Settings, api_key_pepper
from .errors import DomainError, InvalidInput, NotFound
from .models import ApiKey, Role, User, utcnow

TOKEN = re.compile(r'^agor_([0-9a-f]{8})_[A-Za-z0-9_-]{43}$')
EXPIRY_DAYS = (7, 30, 90, 365)  # what the form offers; None: never expires
MAX_KEYS = 50  # live keys per user
LAST_USED_EVERY = timedelta(minutes=1)  # last_used_at is written at most this often (not on every request)


class Unauthorized(DomainError, status=401):
    """The request's API key does not authenticate anyone; the message says why."""


def create(settings: Settings, actor: User, name: str,
           expires_in_days: int | None = None) -> tuple[dict[str, Any], str]:
    """A new key of `actor`'s: (its listing, the key itself). The key is never stored, so this is the only time
    anyone sees it."""
    require(actor, Role.viewer, 'create API keys')
    name = (name or '').strip()
    if not name or len(name) > 80:
        raise InvalidInput('Name the key (at most 80 characters), e.g. after the script that uses it.')
    if expires_in_days is not None and expires_in_days not in EXPIRY_DAYS:
        raise InvalidInput(f'A key expires after {", ".join(map(str, EXPIRY_DAYS))} days, or never.')
    with db.transaction() as session:
        live = session.exec(select(ApiKey).where(ApiKey.user_id == actor.id, col(ApiKey.revoked_at).is_(None))).all()
        if len([key for key in live if not _expired(key)]) >= MAX_KEYS:
            raise InvalidInput(f'You have {MAX_KEYS} live keys: revoke one you no longer use first.')
        prefix = secrets.token_hex(4)
        token = f'agor_{prefix}_{secrets.token_urlsafe(32)}'
        key = ApiKey(user_id=actor.id, name=name, prefix=prefix, key_hash=_hash(settings, token),
                     expires_at=utcnow() + timedelta(days=expires_in_days) if expires_in_days else None)
        session.add(key)
    return _view(key), token


def list_keys(actor: User) -> list[dict[str, Any]]:
    """`actor`'s own keys, newest first (nobody sees anyone else's, admins included)."""
    require(actor, Role.viewer, 'list API keys')
    with db.read() as session:
        keys = session.exec(select(ApiKey).where(ApiKey.user_id == actor.id)
                            .order_by(col(ApiKey.created_at).desc())).all()
    return [_view(key) for key in keys]


def revoke(actor: User, key_id: str) -> None:
    """End one of `actor`'s keys: refused from the next request on."""
    require(actor, Role.viewer, 'revoke API keys')
    with db.transaction() as session:
        key = session.get(ApiKey, key_id)
        if key is None or key.user_id != actor.id:
            raise NotFound('No such API key of yours.')
        if key.revoked_at is None:
            key.revoked_at = utcnow()


def authenticate(settings: Settings, token: str) -> User:
    """The active user a key belongs to, as stored now; Unauthorized saying why not. Records when it was used."""
    found = TOKEN.match(token or '')
    if not found:
        raise Unauthorized('Malformed API key: expected agor_<prefix>_<secret> as a bearer token.')
    with db.read() as session:
        row = session.exec(select(ApiKey, User).join(User, col(ApiKey.user_id) == User.id)
                           .where(ApiKey.prefix == found.group(1))).first()
    key, user = row if row else (None, None)
    expected = key.key_hash if key else _hash(settings, 'agor_00000000_' + 'x' * 43)  # same work either way
    if not hmac.compare_digest(expected, _hash(settings, token)) or key is None or user is None:
        raise Unauthorized('Unknown API key.')
    if key.revoked_at is not None:
        raise Unauthorized('This API key was revoked.')
    if _expired(key):
        raise Unauthorized('This API key has expired.')
    if not user.active:
        raise Unauthorized('The account of this API key is deactivated.')
    if key.last_used_at is None or utcnow() - key.last_used_at >= LAST_USED_EVERY:
        with db.transaction() as session:
            fresh = session.get(ApiKey, key.id)
            if fresh is not None:
                fresh.last_used_at = utcnow()
    return user


def verify(settings: Settings, token: str) -> User | None:
    """The active user of a valid key (not revoked, not expired), else None."""
    try:
        return authenticate(settings, token)
    except Unauthorized:
        return None


def _expired(key: ApiKey) -> bool:
    return key.expires_at is not None and key.expires_at <= utcnow()


def _hash(settings: Settings, token: str) -> str:
    return hmac.new(api_key_pepper(settings.data_dir), token.encode(), hashlib.sha256).hexdigest()


def _view(key: ApiKey) -> dict[str, Any]:
    state = 'revoked' if key.revoked_at else 'expired' if _expired(key) else 'active'
    return {'id': key.id, 'name': key.name, 'prefix': f'agor_{key.prefix}', 'created_at': key.created_at,
            'last_used_at': key.last_used_at, 'expires_at': key.expires_at, 'state': state}
