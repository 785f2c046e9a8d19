"""Profile → General in the domain: a display name is validated; an avatar is PNG, JPEG or WebP by its content and at
most 1 MB, replaced as a whole (a new id each time), removed back to the initials, and readable by any logged-in
teammate."""
from __future__ import annotations

import pytest
from sqlmodel import select

from agor import auth, db, profile
from agor.errors import InvalidInput, NotFound
from agor.models import UserAvatar

PNG = b'\x89PNG\r\n\x1a\n' + b'\x00' * 16
JPEG = b'\xff\xd8\xff\xe0' + b'\x00' * 16
WEBP = b'RIFF\x10\x00\x00\x00WEBPVP8 ' + b'\x00' * 16


def avatars() -> list[UserAvatar]:
    with db.read() as session:
        return list(session.exec(select(UserAvatar)).all())


def test_a_display_name_is_trimmed_and_validated(settings, make_user):
    vic = make_user('viewer', 'Vic')
    assert profile.set_name(vic, '  Victor \t Viewer ').name == 'Victor Viewer'
    for bad in ('', '   ', 'x' * 81, 'Vic\x00tor'):
        with pytest.raises(InvalidInput, match='display name'):
            profile.set_name(vic, bad)
    assert auth.get_user(vic.id).name == 'Victor Viewer'


@pytest.mark.parametrize('data, kind', [(PNG, 'image/png'), (JPEG, 'image/jpeg'), (WEBP, 'image/webp')])
def test_png_jpeg_and_webp_are_recognised_by_content(settings, make_user, data, kind):
    alice = make_user('member', 'Alice')
    stored = profile.set_avatar(alice, data)
    assert profile.avatar(make_user('viewer', 'Vic'), stored.avatar_id) == (kind, data)
    assert stored.avatar_url == f'/avatars/{stored.avatar_id}'


@pytest.mark.parametrize('data', [b'<svg onload="alert(1)"/>', b'GIF89a' + b'\x00' * 16, b'RIFF\x10\x00\x00\x00WAVE',
                                  b'', b'\x89PNG' + b'\x00' * 16, b'<html>' + PNG])
def test_anything_else_is_refused_and_nothing_is_stored(settings, make_user, data):
    alice = make_user('member', 'Alice')
    with pytest.raises(InvalidInput, match='PNG, JPEG or WebP'):
        profile.set_avatar(alice, data)
    assert avatars() == [] and auth.get_user(alice.id).avatar_id is None


def test_at_most_one_megabyte(settings, make_user):
    alice = make_user('member', 'Alice')
    profile.set_avatar(alice, PNG + b'\x00' * (profile.MAX_AVATAR_BYTES - len(PNG)))
    with pytest.raises(InvalidInput, match='at most 1 MB'):
        profile.set_avatar(alice, PNG + b'\x00' * (profile.MAX_AVATAR_BYTES - len(PNG) + 1))


def test_a_new_upload_replaces_the_old_one_and_initials_come_back(settings, make_user):
    alice = make_user('member', 'Alice')
    first = profile.set_avatar(alice, PNG).avatar_id
    second = profile.set_avatar(alice, JPEG).avatar_id
    assert second != first and [a.id for a in avatars()] == [second]
    with pytest.raises(NotFound):
        profile.avatar(alice, first)
    assert profile.clear_avatar(alice).avatar_id is None and avatars() == []
    assert profile.get(auth.get_user(alice.id))['avatar_url'] is None
