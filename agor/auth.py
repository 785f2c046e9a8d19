"""Accounts: first owner, login with argon2 and slow-down of repeated failures, invites, roles."""
from __future__ import annotations

import hashlib
import re
import secrets
import threading
import time
from collections.abc import Callable
from datetime import timedelta

from argon2 import PasswordHasher
from argon2.exceptions import InvalidHashError, VerificationError
from sqlalchemy import func
from sqlmodel import Session, select

from . import db
from .errors import Conflict, Forbidden, InvalidInput, NotFound, TooManyAttempts
from .models import Invite, Role, User, utcnow
from .events import AccountChanged, topic

AVATAR_COLORS = ('#0d9488', '#2563eb', '#7c3aed', '#db2777', '#ea580c', '#16a34a', '#ca8a04', '#0891b2', '#9333ea')
EMAIL = re.compile(r'^[^@\s]+@[^@\s]+\.[^@\s]+$')
MIN_PASSWORD = 8
INVITE_DAYS = 7

_hasher = PasswordHasher()
_DUMMY_HASH = _hasher.hash('not-a-real-password')


def require(user: User, role: Role, action: str) -> None:
    """The one place a role is checked: raises a message that says what the user's role cannot do."""
    if not user.has(role):
        raise Forbidden(f'Your role ({user.role}) cannot {action}; it needs {role.name} or higher.')


def has_users() -> bool:
    with db.read() as session:
        return session.exec(select(func.count()).select_from(User)).one() > 0


def create_first_owner(email: str, name: str, password: str) -> User:
    """Only while the instance has no account at all (first visit, or unattended install from env)."""
    with db.transaction() as session:
        if session.exec(select(func.count()).select_from(User)).one() > 0:
            raise Conflict('The owner account already exists. Log in instead.')
        return _add_user(session, email, name, password, Role.owner)


def create_user(actor: User, email: str, name: str, password: str, role: Role) -> User:
    require(actor, Role.admin, 'create accounts')
    _check_may_grant(actor, role)
    with db.transaction() as session:
        return _add_user(session, email, name, password, role)


def authenticate(email: str, password: str, client_ip: str = '') -> User:
    """Check a login. Failures slow down further attempts (LoginThrottle); a wrong email and a wrong password look
    the same."""
    email = email.strip().lower()
    attempt = throttle.start(email, client_ip)
    with db.read() as session:
        user = session.exec(select(User).where(User.email == email)).first()
    try:
        _hasher.verify(user.password_hash if user else _DUMMY_HASH, password)
        if user is None or not user.active:
            raise VerificationError()
    except (VerificationError, InvalidHashError):
        raise InvalidInput('Wrong email or password.') from None
    throttle.succeed(attempt)
    with db.transaction() as session:
        fresh = session.get(User, user.id)
        assert fresh is not None
        fresh.last_seen_at = utcnow()
        if _hasher.check_needs_rehash(fresh.password_hash):
            fresh.password_hash = _hasher.hash(password)
        return fresh


def get_user(user_id: str | None) -> User | None:
    if not user_id:
        return None
    with db.read() as session:
        user = session.get(User, user_id)
    return user if user and user.active else None


def list_users() -> list[User]:
    with db.read() as session:
        return list(session.exec(select(User).order_by(User.name)).all())


def set_role(actor: User, user_id: str, role: Role) -> User:
    require(actor, Role.admin, 'change roles')
    _check_may_grant(actor, role)
    with db.transaction() as session:
        target = _get(session, user_id)
        if target.level >= actor.level and actor.level < Role.owner:
            raise Forbidden('Only an owner can change the role of an admin or owner.')
        if target.level == Role.owner and role < Role.owner and _owner_count(session) <= 1:
            raise InvalidInput('The last owner cannot be demoted: make someone else owner first.')
        target.role = role.name
        db.emit_after_commit(session, topic('user', target.id), AccountChanged(type='account_changed'))
        return target


def set_active(actor: User, user_id: str, active: bool) -> User:
    require(actor, Role.admin, 'deactivate accounts')
    with db.transaction() as session:
        target = _get(session, user_id)
        if target.id == actor.id:
            raise InvalidInput('You cannot deactivate your own account.')
        if target.level >= actor.level and actor.level < Role.owner:
            raise Forbidden('Only an owner can deactivate an admin or owner.')
        target.active = active
        db.emit_after_commit(session, topic('user', target.id), AccountChanged(type='account_changed'))
        return target


def create_invite(actor: User, role: Role, email: str | None = None) -> str:
    """Returns the invite token (shown once as a link); only its hash is stored."""
    require(actor, Role.admin, 'invite people')
    _check_may_grant(actor, role)
    email = _clean_email(email) if email else None
    token = secrets.token_urlsafe(24)
    with db.transaction() as session:
        session.add(Invite(token_hash=_token_hash(token), role=role.name, email=email, created_by=actor.id,
                           expires_at=utcnow() + timedelta(days=INVITE_DAYS)))
    return token


def invite_for(token: str) -> Invite:
    with db.read() as session:
        return _open_invite(session, token)


def accept_invite(token: str, email: str, name: str, password: str) -> User:
    with db.transaction() as session:
        invite = _open_invite(session, token)
        if invite.email and invite.email != _clean_email(email):
            raise InvalidInput(f'This invite is for {invite.email}.')
        user = _add_user(session, email, name, password, Role.parse(invite.role))
        invite.used_at = utcnow()
        invite.used_by = user.id
        return user


class LoginThrottle:
    """Failed logins are counted under three keys, each with its own allowance within WINDOW seconds; past it, every
    further attempt under that key must wait, doubling up to MAX_WAIT:

    - one address guessing one account: PER_ADDRESS_AND_ACCOUNT;
    - one account, from any address (guesses spread over many addresses): PER_ACCOUNT;
    - one address, any account (one password sprayed over many accounts): PER_ADDRESS, high enough that teammates
      behind one address (an office, a VPN, a proxy) are not locked out by someone else's failures there.

    An attempt counts as a failure from the moment it is let through (checking and counting happen under one lock),
    and is taken back when the password was right: parallel attempts cannot all pass the check before any of them is
    counted. A correct password also forgives its account's failures."""

    PER_ADDRESS_AND_ACCOUNT = 5
    PER_ACCOUNT = 20
    PER_ADDRESS = 100
    WINDOW = 15 * 60
    MAX_WAIT = 300

    def __init__(self, clock: Callable[[], float] = time.monotonic) -> None:
        self.clock = clock
        self._failures: dict[str, list[float]] = {}
        self._lock = threading.Lock()

    def start(self, email: str, address: str) -> tuple[list[str], float]:
        """Let an attempt through (counted as a failure until `succeed`) or raise TooManyAttempts."""
        keys = [f'pair:{address} {email}', f'account:{email}', f'address:{address}']
        now = self.clock()
        with self._lock:
            wait = max(self._wait(key, now) for key in keys)
            if wait <= 0:
                for key in keys:
                    self._failures.setdefault(key, []).append(now)
        if wait > 0:
            raise TooManyAttempts(f'Too many failed logins. Try again in {int(wait) + 1} s.')
        return keys, now

    def succeed(self, attempt: tuple[list[str], float]) -> None:
        keys, started = attempt
        with self._lock:
            for key in keys:
                if key.startswith('address:'):
                    failures = self._failures.get(key, [])
                    if started in failures:
                        failures.remove(started)
                else:
                    self._failures.pop(key, None)

    def _wait(self, key: str, now: float) -> float:
        recent = [t for t in self._failures.pop(key, []) if now - t < self.WINDOW]
        if recent:
            self._failures[key] = recent
        allowance = {'pair': self.PER_ADDRESS_AND_ACCOUNT, 'account': self.PER_ACCOUNT,
                     'address': self.PER_ADDRESS}[key.split(':', 1)[0]]
        excess = len(recent) - allowance
        if excess < 0:
            return 0
        return recent[-1] + min(2 ** excess, self.MAX_WAIT) - now


throttle = LoginThrottle()


def _add_user(session: Session, email: str, name: str, password: str, role: Role) -> User:
    email = _clean_email(email)
    name = name.strip()
    if not name or len(name) > 80:
        raise InvalidInput('Enter a display name (at most 80 characters).')
    if len(password) < MIN_PASSWORD:
        raise InvalidInput(f'The password needs at least {MIN_PASSWORD} characters.')
    if session.exec(select(User).where(User.email == email)).first():
        raise Conflict(f'An account for {email} already exists.')
    user = User(email=email, name=name, role=role.name, password_hash=_hasher.hash(password),
                avatar_color=AVATAR_COLORS[int(hashlib.sha1(email.encode()).hexdigest(), 16) % len(AVATAR_COLORS)])
    session.add(user)
    session.flush()
    return user


def _clean_email(email: str) -> str:
    email = email.strip().lower()
    if not EMAIL.match(email) or len(email) > 254:
        raise InvalidInput(f'{email!r} is not a valid email address.')
    return email


def _check_may_grant(actor: User, role: Role) -> None:
    if role > actor.level:  # an owner grants any role, an admin up to admin
        raise Forbidden(f'Your role ({actor.role}) cannot grant the role {role.name}.')


def _get(session: Session, user_id: str) -> User:
    user = session.get(User, user_id)
    if user is None:
        raise NotFound('No such user.')
    return user


def _owner_count(session: Session) -> int:
    return session.exec(select(func.count()).select_from(User).where(User.role == 'owner', User.active)).one()


def _open_invite(session: Session, token: str) -> Invite:
    invite = session.exec(select(Invite).where(Invite.token_hash == _token_hash(token))).first()
    if invite is None:
        raise NotFound('This invite link is not valid.')
    if invite.used_at is not None:
        raise InvalidInput('This invite link has already been used.')
    if invite.expires_at < utcnow():
        raise InvalidInput('This invite link has expired. Ask an admin for a new one.')
    return invite


def _token_hash(token: str) -> str:
    return hashlib.sha256(token.encode()).hexdigest()
