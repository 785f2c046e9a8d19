"""Logins: a server-side record per login, checked on every page load and every action.

A browser keeps its login token in NiceGUI's server-side user storage; only the token's hash is stored here.
`acting_user` is how every action learns who acts NOW: the login must not have ended and the account must be active;
the role is the one stored now. Logging out ends the login, and `user:<id>` hears it after the commit so the open
pages of that login close (as they do when the account is deactivated or its role changes: `account_changed`).
"""
from __future__ import annotations

import hashlib
import secrets

from sqlmodel import Session, select

from . import db
from .errors import SignedOut
from .models import Login, User, utcnow
from .events import LoggedOut, topic



def open_login(user_id: str, *, replacing: str | None = None) -> str:
    """Start a login for an account that just proved who it is; returns the token the browser's storage keeps. The
    browser's previous login (`replacing`), if any, ends: its open tabs close."""
    token = secrets.token_urlsafe(32)
    with db.transaction() as session:
        _end(session, replacing)
        session.add(Login(token_hash=_hash(token), user_id=user_id))
    return token


def end(token: str | None) -> None:
    """Log out: the login is refused from now on, in every tab, and its open pages hear it."""
    with db.transaction() as session:
        _end(session, token)


def acting_user(token: str | None) -> User:
    """The account a login acts as, as it is now; SignedOut when the login ended or the account is deactivated."""
    found = current(token)
    if found is None:
        raise SignedOut()
    return found[1]


def current(token: str | None) -> tuple[str, User] | None:
    """(login id, user) of a live login of an active account, else None."""
    if not token:
        return None
    with db.read() as session:
        row = session.exec(select(Login, User).join(User, Login.user_id == User.id)
                           .where(Login.token_hash == _hash(token))).first()
    if row is None:
        return None
    login, user = row
    if login.ended_at is not None or not user.active:
        return None
    return login.id, user


def _end(session: Session, token: str | None) -> None:
    login = session.exec(select(Login).where(Login.token_hash == _hash(token))).first() if token else None
    if login is not None and login.ended_at is None:
        login.ended_at = utcnow()
        db.emit_after_commit(session, topic('user', login.user_id), LoggedOut(type='logged_out', login=login.id))


def _hash(token: str) -> str:
    return hashlib.sha256(token.encode()).hexdigest()
