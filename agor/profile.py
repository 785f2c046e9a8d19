"""A user's own profile (Settings → Profile → General): display name and avatar. Email and role are shown, not set
here (an admin sets roles)."""
from __future__ import annotations

from sqlalchemy import delete
from sqlmodel import Session, col

from . import db
from .auth import require
from .errors import InvalidInput, NotFound
from .models import Role, User, UserAvatar

MAX_NAME = 80
MAX_AVATAR_BYTES = 1024 * 1024
# what an image file starts with, by type: the upload's name and declared type are not believed
SIGNATURES = {'image/png': (b'\x89PNG\r\n\x1a\n',), 'image/jpeg': (b'\xff\xd8\xff',)}


def image_type(data: bytes) -> str | None:
    """'image/png', 'image/jpeg' or 'image/webp' by the file's content, else None."""
    if data[:4] == b'RIFF' and data[8:12] == b'WEBP':
        return 'image/webp'
    return next((kind for kind, starts in SIGNATURES.items() if data.startswith(starts)), None)


def set_name(actor: User, name: str) -> User:
    require(actor, Role.viewer, 'change your name')
    name = ' '.join((name or '').split())
    if not name or len(name) > MAX_NAME or not name.isprintable():
        raise InvalidInput(f'A display name has 1 to {MAX_NAME} printable characters.')
    with db.transaction() as session:
        user = _own(session, actor)
        user.name = name
        return user


def set_avatar(actor: User, data: bytes) -> User:
    """Replace `actor`'s avatar with an uploaded image (PNG, JPEG or WebP, at most 1 MB). It gets a new id, so the
    URL changes and no browser keeps showing the old one."""
    require(actor, Role.viewer, 'change your avatar')
    if len(data) > MAX_AVATAR_BYTES:
        raise InvalidInput(f'An avatar is at most 1 MB; this file has {len(data) / 1024 / 1024:.1f} MB.')
    kind = image_type(data)
    if kind is None:
        raise InvalidInput('An avatar is a PNG, JPEG or WebP image; this file is none of them.')
    with db.transaction() as session:
        user = _own(session, actor)
        _drop(session, user)
        avatar = UserAvatar(user_id=user.id, content_type=kind, data=data)
        session.add(avatar)
        session.flush()
        user.avatar_id = avatar.id
        return user


def clear_avatar(actor: User) -> User:
    """Back to the generated initials."""
    require(actor, Role.viewer, 'change your avatar')
    with db.transaction() as session:
        user = _own(session, actor)
        _drop(session, user)
        user.avatar_id = None
        return user


def avatar(viewer: User, avatar_id: str) -> tuple[str, bytes]:
    """(content type, image) of an avatar, for any logged-in user (teammates see each other's faces)."""
    require(viewer, Role.viewer, 'see avatars')
    with db.read() as session:
        found = session.get(UserAvatar, avatar_id)
    if found is None:
        raise NotFound('No such avatar.')
    return found.content_type, found.data


def _own(session: Session, actor: User) -> User:
    user = session.get(User, actor.id)
    if user is None:
        raise NotFound('Your account no longer exists.')
    return user


def _drop(session: Session, user: User) -> None:
    session.execute(delete(UserAvatar).where(col(UserAvatar.user_id) == user.id))


def get(actor: User) -> dict[str, str | None]:
    """What Profile → General shows: the account as stored now."""
    require(actor, Role.viewer, 'read your profile')
    return {'name': actor.name, 'email': actor.email, 'role': actor.role, 'initials': actor.initials,
            'color': actor.avatar_color, 'avatar_url': actor.avatar_url}
