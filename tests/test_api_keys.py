"""Personal API keys: shown once, stored as an HMAC under the server pepper, found by their public prefix, refused
when expired, revoked, tampered with or their account deactivated; only their owner lists or revokes them. And the
real app's `GET /api/v1/me` with a good, expired, revoked and malformed key, and without one."""
from __future__ import annotations

from datetime import timedelta

import httpx
import pytest
from sqlmodel import select

from agor import api_keys, auth, db
from agor.config import load_settings
from agor.errors import InvalidInput, NotFound
from agor.models import ApiKey, Role, utcnow

from .app_server import running_app
from .conftest import PASSWORD


def stored(key_id: str) -> ApiKey:
    with db.read() as session:
        return session.get(ApiKey, key_id)


def change(key_id: str, **values) -> None:
    with db.transaction() as session:
        key = session.get(ApiKey, key_id)
        for name, value in values.items():
            setattr(key, name, value)


def test_a_key_is_shown_once_and_only_its_prefix_and_hmac_are_stored(settings, make_user):
    alice = make_user('member', 'Alice')
    view, token = api_keys.create(settings, alice, '  release script ', 30)
    assert token.startswith(view['prefix'] + '_') and len(token) == len('agor_12345678_') + 43
    row = stored(view['id'])
    assert row.name == 'release script' and row.user_id == alice.id
    assert token not in row.key_hash and token.split('_')[-1] not in repr(row.model_dump())
    assert timedelta(days=29, hours=23) < row.expires_at - utcnow() <= timedelta(days=30)
    assert 'agor_' not in repr(api_keys.list_keys(alice)).replace(view['prefix'], '')  # the listing has no secret
    assert api_keys.verify(settings, token).id == alice.id


def test_the_hash_is_keyed_by_the_server_pepper(settings, make_user):
    """A copy of the database alone cannot check a key: with another pepper the stored hash matches nothing."""
    alice = make_user('member', 'Alice')
    _, token = api_keys.create(settings, alice, 'ci')
    assert (settings.data_dir / 'api_key_pepper').stat().st_mode & 0o777 == 0o600
    (settings.data_dir / 'api_key_pepper').write_text('another pepper')
    assert api_keys.verify(settings, token) is None


def test_expired_revoked_tampered_unknown_and_deactivated_keys_are_refused_with_their_reason(settings, make_user):
    alice = make_user('member', 'Alice')
    admin = make_user('admin', 'Ada')
    view, token = api_keys.create(settings, alice, 'ci', 7)
    secret_part = token[len('agor_12345678_'):]
    tampered = token[:-1] + ('A' if token[-1] != 'A' else 'B')
    cases = {
        'tampered': (tampered, 'Unknown API key.'),
        'unknown prefix': ('agor_00000000_' + secret_part, 'Unknown API key.'),
        'malformed': ('Bearer ' + token, 'Malformed API key'),
        'empty': ('', 'Malformed API key'),
    }
    for name, (candidate, reason) in cases.items():
        with pytest.raises(api_keys.Unauthorized, match=reason):
            api_keys.authenticate(settings, candidate)
        assert api_keys.verify(settings, candidate) is None, name

    change(view['id'], expires_at=utcnow() - timedelta(seconds=1))
    with pytest.raises(api_keys.Unauthorized, match='expired'):
        api_keys.authenticate(settings, token)
    assert api_keys.list_keys(alice)[0]['state'] == 'expired'

    change(view['id'], expires_at=utcnow() + timedelta(days=1))
    assert api_keys.verify(settings, token).id == alice.id
    auth.set_active(admin, alice.id, False)
    with pytest.raises(api_keys.Unauthorized, match='deactivated'):
        api_keys.authenticate(settings, token)
    auth.set_active(admin, alice.id, True)

    api_keys.revoke(alice, view['id'])
    with pytest.raises(api_keys.Unauthorized, match='revoked'):
        api_keys.authenticate(settings, token)
    assert api_keys.list_keys(alice)[0]['state'] == 'revoked'


def test_verify_acts_as_the_user_stored_now_and_records_the_last_use(settings, make_user):
    alice = make_user('member', 'Alice')
    admin = make_user('owner')
    view, token = api_keys.create(settings, alice, 'ci')
    assert stored(view['id']).last_used_at is None
    auth.set_role(admin, alice.id, Role.viewer)
    assert api_keys.verify(settings, token).role == 'viewer'
    first = stored(view['id']).last_used_at
    assert first is not None and utcnow() - first < timedelta(seconds=10)
    api_keys.verify(settings, token)  # within a minute: not written again
    assert stored(view['id']).last_used_at == first
    change(view['id'], last_used_at=utcnow() - timedelta(minutes=2))
    api_keys.verify(settings, token)
    assert utcnow() - stored(view['id']).last_used_at < timedelta(seconds=10)


def test_only_the_owner_lists_and_revokes_a_key_even_an_admin_cannot(settings, make_user):
    alice = make_user('member', 'Alice')
    viewer = make_user('viewer', 'Vic')
    admin = make_user('admin', 'Ada')
    alices, _ = api_keys.create(settings, alice, 'alice key')
    vics, vic_token = api_keys.create(settings, viewer, 'vic key')  # a viewer may have keys (read-only API)
    assert [k['name'] for k in api_keys.list_keys(viewer)] == ['vic key']
    assert api_keys.list_keys(admin) == []
    for stranger in (viewer, admin):
        with pytest.raises(NotFound):
            api_keys.revoke(stranger, alices['id'])
    assert stored(alices['id']).revoked_at is None
    assert api_keys.verify(settings, vic_token).id == viewer.id


def test_bad_names_expiries_and_too_many_keys_are_refused(settings, make_user, monkeypatch):
    alice = make_user('member', 'Alice')
    for name in ('', '   ', 'x' * 81):
        with pytest.raises(InvalidInput, match='Name the key'):
            api_keys.create(settings, alice, name)
    with pytest.raises(InvalidInput, match='expires after'):
        api_keys.create(settings, alice, 'ci', 3)
    monkeypatch.setattr(api_keys, 'MAX_KEYS', 2)
    first, _ = api_keys.create(settings, alice, 'one')
    api_keys.create(settings, alice, 'two')
    with pytest.raises(InvalidInput, match='2 live keys'):
        api_keys.create(settings, alice, 'three')
    api_keys.revoke(alice, first['id'])
    api_keys.create(settings, alice, 'three')  # a revoked key no longer counts
    with db.read() as session:
        assert len(session.exec(select(ApiKey)).all()) == 3


def test_get_me_over_http_with_good_expired_revoked_malformed_and_no_key(tmp_path):
    with running_app(tmp_path / 'app') as server:
        db.init(server.database_url)
        settings = load_settings(data_dir=str(server.data_dir))
        alice = auth.create_first_owner('alice@example.com', 'Alice', PASSWORD)
        good = api_keys.create(settings, alice, 'good')[1]
        expired_view, expired = api_keys.create(settings, alice, 'expired', 7)
        change(expired_view['id'], expires_at=utcnow() - timedelta(minutes=1))
        revoked_view, revoked = api_keys.create(settings, alice, 'revoked')
        api_keys.revoke(alice, revoked_view['id'])

        def me(**headers: str) -> httpx.Response:
            return httpx.get(f'{server.url}/api/v1/me', headers=headers, timeout=30)

        answer = me(Authorization=f'Bearer {good}')
        assert answer.status_code == 200
        assert answer.json() == {'id': alice.id, 'email': 'alice@example.com', 'name': 'Alice', 'role': 'owner',
                                 'mcp_authenticated_server_ids': []}
        refused = {
            'none': (me(), 'Not authenticated'),
            'basic': (me(Authorization=f'Basic {good}'), 'Not authenticated'),
            'expired': (me(Authorization=f'Bearer {expired}'), 'This API key has expired.'),
            'revoked': (me(Authorization=f'bearer {revoked}'), 'This API key was revoked.'),
            'malformed': (me(Authorization='Bearer agor_nope'), 'Malformed API key'),
            'tampered': (me(Authorization=f'Bearer {good[:-2]}xx'), 'Unknown API key.'),
        }
        for name, (response, reason) in refused.items():
            assert response.status_code == 401, name
            assert response.headers['content-type'] == 'application/json', name
            assert response.headers['www-authenticate'] == 'Bearer', name
            assert response.json()['code'] == 'unauthorized', name
            assert response.json()['message'].startswith(reason), (name, response.json())
            assert 'Traceback' not in response.text and good not in response.text
        log = (server.data_dir / 'app.log').read_text()
        assert good not in log and revoked not in log
