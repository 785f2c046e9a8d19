"""Users' OAuth grants for MCP servers against a real authorization server and a protected MCP server on loopback
(tests/oauth_servers.py): discovery, DCR, PKCE, the callback's checks, refresh (also racing), revocation, and the
bad inputs that must store nothing."""
from __future__ import annotations

import asyncio
import atexit
import shutil
import tempfile
import os
import threading
from collections.abc import Iterator
from pathlib import Path
from urllib.parse import parse_qsl, urlparse

import httpx
import pytest
from sqlmodel import select

from agor import db, mcp_oauth, mcp_probe, mcp_servers, unix_accounts, user_secrets
from agor.config import load_settings, session_secret
from agor.errors import DomainError, Forbidden, InvalidInput
from agor.mcp_discovery import McpAuthError
from agor.models import McpGrant, McpPendingFlow
from agor.secret_box import UnreadableSecret

from .conftest import EXECUTOR
from .oauth_servers import AuthServer, ProtectedMcp

CALLBACK = 'http://127.0.0.1:9/mcp-oauth/callback'
STUB_SOURCE = Path(__file__).with_name('mcp_stub_server.sh')


def _readable_stub() -> Path:
    """The stub, copied where the executor account can read it (a checkout under /root is 0700 to it)."""
    folder = Path(tempfile.mkdtemp(prefix='agor-mcp-stub-'))
    folder.chmod(0o755)
    atexit.register(shutil.rmtree, folder, True)
    stub = folder / STUB_SOURCE.name
    shutil.copyfile(STUB_SOURCE, stub)
    stub.chmod(0o755)
    return stub


STUB_SERVER = _readable_stub()


@pytest.fixture
def oauth() -> Iterator[tuple[AuthServer, ProtectedMcp]]:
    auth_server = AuthServer()
    protected = ProtectedMcp(auth_server)
    yield auth_server, protected
    protected.stop()
    auth_server.stop()


@pytest.fixture
def people(make_user):
    return make_user('admin', 'Ada Admin'), make_user('member', 'Alice A'), make_user('member', 'Bob B')


@pytest.fixture
def server(oauth, people) -> dict:
    """The protected MCP server, added by the admin."""
    return add_server(people[0], oauth[1].mcp_url)


@pytest.fixture
def connected(server, people) -> None:
    """Alice's grant for the protected MCP server, connected."""
    connect(people[1], server['id'])


def add_server(admin, url: str, **fields) -> dict:
    return mcp_servers.save_server(admin, None, {'name': fields.pop('name', 'protected'), 'transport': 'http',
                                                 'url': url, 'auth': 'oauth', **fields}, True)


def browser_step(authorize: str) -> dict[str, str]:
    """What the browser does at the (auto-approving) authorization server: its redirect's query for the callback."""
    answer = httpx.get(authorize, follow_redirects=False)
    assert answer.status_code in (302, 303, 307), answer.text
    location = answer.headers['location']
    assert location.startswith(CALLBACK)
    return dict(parse_qsl(urlparse(location).query))


def connect(user, server_id: str) -> str:
    return mcp_oauth.finish(user, browser_step(mcp_oauth.authorize_url(user, server_id, CALLBACK, True)))


async def whoami(url: str, token: str) -> str:
    import httpx2
    from mcp import ClientSession
    from mcp.client.streamable_http import streamable_http_client
    async with httpx2.AsyncClient(headers={'Authorization': f'Bearer {token}'}) as client, \
            streamable_http_client(url, http_client=client) as (read, write), ClientSession(read, write) as session:
        await session.initialize()
        result = await session.call_tool('whoami', {})
        return result.content[0].text


def grants() -> list[McpGrant]:
    with db.read() as session:
        return list(session.exec(select(McpGrant)).all())


def flows() -> list[McpPendingFlow]:
    with db.read() as session:
        return list(session.exec(select(McpPendingFlow)).all())


def test_connect_discovers_registers_and_stores_the_grant_sealed(oauth, people, server) -> None:
    auth_server, protected = oauth
    alice = people[1]
    assert mcp_servers.grant_states(alice)[server['id']]['status'] == 'not_connected'
    authorize = mcp_oauth.authorize_url(alice, server['id'], CALLBACK, True)
    query = dict(parse_qsl(urlparse(authorize).query))
    assert query['code_challenge_method'] == 'S256' and query['resource'] == protected.mcp_url
    assert 'POST /register' in auth_server.requests  # no client was configured: one was registered (RFC 7591)
    assert mcp_oauth.finish(alice, browser_step(authorize)) == 'protected'
    [grant] = grants()
    assert grant.user_id == alice.id and grant.status == 'connected' and grant.expires_at is not None
    token = next(iter(auth_server.provider.access))
    assert token not in grant.access_token and grant.refresh_token and 'rt-' not in grant.refresh_token
    assert mcp_servers.authenticated_server_ids(alice) == [server['id']]
    assert asyncio.run(whoami(protected.mcp_url, mcp_oauth.access_token(alice.id, server['id']))) == 'you are alice'
    assert flows() == []  # the pending flow was used up


def test_sealed_tokens_are_bound_to_their_user(oauth, people, server, connected) -> None:
    bob = people[2]
    with db.transaction() as session:  # Alice's sealed token copied into a row of Bob's
        [grant] = session.exec(select(McpGrant)).all()
        session.add(McpGrant(user_id=bob.id, server_id=grant.server_id, client_row=grant.client_row,
                             access_token=grant.access_token, refresh_token=grant.refresh_token,
                             expires_at=grant.expires_at))
    with pytest.raises(UnreadableSecret):
        mcp_oauth.access_token(bob.id, server['id'])


def test_an_expiring_token_is_refreshed_and_the_rotated_refresh_token_kept(oauth, people, server, connected) -> None:
    auth_server, protected = oauth
    alice = people[1]
    first = mcp_oauth.access_token(alice.id, server['id'])
    assert mcp_oauth.access_token(alice.id, server['id']) == first and auth_server.provider.refreshes == 0
    auth_server.provider.expire_access_tokens()
    with db.transaction() as session:  # the grant says it expires within the refresh margin
        grant = session.exec(select(McpGrant)).one()
        grant.expires_at = grant.expires_at.replace(year=2000)
    second = mcp_oauth.access_token(alice.id, server['id'])
    assert second != first and auth_server.provider.refreshes == 1
    assert asyncio.run(whoami(protected.mcp_url, second)) == 'you are alice'
    third = mcp_oauth.access_token(alice.id, server['id'], stale=second)  # refused by the server: refreshed again
    assert third != second and auth_server.provider.refreshes == 2  # the rotated refresh token was stored


def test_concurrent_calls_during_expiry_refresh_once(oauth, people, server, connected) -> None:
    auth_server = oauth[0]
    alice = people[1]
    stale = mcp_oauth.access_token(alice.id, server['id'])
    auth_server.provider.expire_access_tokens()
    results: list[str] = []
    errors: list[Exception] = []
    start = threading.Barrier(6)

    def call() -> None:
        start.wait()
        try:
            results.append(mcp_oauth.access_token(alice.id, server['id'], stale=stale))
        except Exception as error:  # noqa: BLE001
            errors.append(error)
    threads = [threading.Thread(target=call) for _ in range(6)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(30)
    assert errors == [] and len(results) == 6
    assert auth_server.provider.refreshes == 1 and len(set(results)) == 1
    assert grants()[0].status == 'connected'


def test_a_refused_refresh_marks_the_grant_for_reauthorization(oauth, people, server, connected) -> None:
    auth_server = oauth[0]
    alice = people[1]
    auth_server.provider.refresh.clear()  # the AS forgot the grant
    with pytest.raises(mcp_oauth.NeedsAuthorization):
        mcp_oauth.access_token(alice.id, server['id'], stale=mcp_oauth.access_token(alice.id, server['id']))
    assert mcp_servers.grant_states(alice)[server['id']]['status'] == 'needs_reauth'
    assert mcp_servers.authenticated_server_ids(alice) == []
    connect(alice, server['id'])  # connecting again repairs it
    assert mcp_servers.grant_states(alice)[server['id']]['status'] == 'connected'


def test_disconnect_revokes_at_the_authorization_server_and_deletes(oauth, people, server, connected) -> None:
    auth_server = oauth[0]
    alice = people[1]
    token = mcp_oauth.access_token(alice.id, server['id'])
    assert mcp_oauth.disconnect(alice, server['id']) is True
    assert token in auth_server.provider.revoked and not auth_server.provider.refresh
    assert grants() == []
    with pytest.raises(mcp_oauth.NeedsAuthorization):
        mcp_oauth.access_token(alice.id, server['id'])


def test_connecting_through_another_address_leaves_other_grants_working(oauth, people, server, connected) -> None:
    """Bob opens the app by another host name: his Connect registers a client of its own; Alice's grant still
    refreshes with hers."""
    auth_server = oauth[0]
    _, alice, bob = people
    stale = mcp_oauth.access_token(alice.id, server['id'])
    other = 'http://localhost:9/mcp-oauth/callback'
    answer = httpx.get(mcp_oauth.authorize_url(bob, server['id'], other, True), follow_redirects=False)
    assert answer.headers['location'].startswith(other)
    mcp_oauth.finish(bob, dict(parse_qsl(urlparse(answer.headers['location']).query)))
    assert len(auth_server.provider.clients) == 2
    assert mcp_oauth.access_token(alice.id, server['id'], stale=stale) != stale  # refreshed with her own client
    assert {g.user_id: g.status for g in grants()} == {alice.id: 'connected', bob.id: 'connected'}


def test_a_refused_client_does_not_mark_the_grant_for_reauthorization(oauth, people, server, connected) -> None:
    auth_server = oauth[0]
    alice = people[1]
    auth_server.provider.clients.clear()  # the AS lost the app's client for a while: invalid_client
    with pytest.raises(McpAuthError, match='invalid_client'):
        mcp_oauth.access_token(alice.id, server['id'], stale=mcp_oauth.access_token(alice.id, server['id']))
    assert mcp_servers.grant_states(alice)[server['id']]['status'] == 'connected'


def test_grants_are_per_user(oauth, people, server, connected) -> None:
    auth_server, protected = oauth
    _, alice, bob = people
    with pytest.raises(mcp_oauth.NeedsAuthorization):
        mcp_oauth.access_token(bob.id, server['id'])
    auth_server.provider.subject = 'bob'
    connect(bob, server['id'])
    assert asyncio.run(whoami(protected.mcp_url, mcp_oauth.access_token(bob.id, server['id']))) == 'you are bob'
    assert asyncio.run(whoami(protected.mcp_url, mcp_oauth.access_token(alice.id, server['id']))) == 'you are alice'


# ---- the callback's checks ----------------------------------------------------------------------------------------

def test_a_replayed_callback_is_refused(oauth, people, server) -> None:
    alice = people[1]
    params = browser_step(mcp_oauth.authorize_url(alice, server['id'], CALLBACK, True))
    mcp_oauth.finish(alice, params)
    mcp_oauth.disconnect(alice, server['id'])
    with pytest.raises(InvalidInput, match='already used'):
        mcp_oauth.finish(alice, params)
    assert grants() == []


def test_a_wrong_state_is_refused(oauth, people, server) -> None:
    alice = people[1]
    params = browser_step(mcp_oauth.authorize_url(alice, server['id'], CALLBACK, True))
    with pytest.raises(InvalidInput, match='state does not match'):
        mcp_oauth.finish(alice, {**params, 'state': 'forged'})
    assert grants() == [] and len(flows()) == 1


REFUSED_CALLBACKS = [  # (who finishes, what the callback carries instead, the error)
    ('bob', {}, Forbidden, None),
    ('alice', {'iss': 'https://evil.example'}, McpAuthError, 'issuer'),
    ('alice', {'code': None, 'error': 'access_denied', 'error_description': 'the user said no'},
     McpAuthError, 'refused: access_denied: the user said no'),
    ('alice', {'code': 'not-the-code'}, McpAuthError, 'refused the token request'),
]


@pytest.mark.parametrize('who, changes, error, message', REFUSED_CALLBACKS,
                         ids=['another-user', 'wrong-iss', 'server-error', 'refused-code'])
def test_a_refused_callback_stores_nothing(oauth, people, server, who, changes, error, message) -> None:
    _, alice, bob = people
    params = browser_step(mcp_oauth.authorize_url(alice, server['id'], CALLBACK, True))
    params = {key: value for key, value in {**params, **changes}.items() if value is not None}
    with pytest.raises(error, match=message):
        mcp_oauth.finish({'alice': alice, 'bob': bob}[who], params)
    assert grants() == []


# ---- bad metadata ---------------------------------------------------------------------------------------------------

@pytest.mark.parametrize('override, message', [
    ({'issuer': 'http://127.0.0.1:1'}, 'names the issuer'),
    ({'code_challenge_methods_supported': None}, 'PKCE with S256'),
    ({'code_challenge_methods_supported': ['plain']}, 'PKCE with S256'),
    ({'token_endpoint': None}, 'malformed'),
    ({'registration_endpoint': None}, 'no dynamic client registration'),
    ({'token_endpoint': 'http://10.1.2.3/token'}, 'private or internal'),
])
def test_bad_authorization_server_metadata_is_refused(oauth, people, server, override, message) -> None:
    auth_server = oauth[0]
    alice = people[1]
    auth_server.metadata_override = override
    with pytest.raises(DomainError, match=message):
        mcp_oauth.authorize_url(alice, server['id'], CALLBACK, True)
    assert flows() == [] and grants() == []


def test_an_endless_metadata_document_is_refused_after_256_kb(oauth, people, server) -> None:
    auth_server = oauth[0]
    auth_server.endless_metadata = True
    with pytest.raises(McpAuthError, match='too large'):
        mcp_oauth.authorize_url(people[1], server['id'], CALLBACK, True)
    assert auth_server.sent < 8 * 1024 * 1024  # the app stopped reading: most of the 64 MB was never sent
    assert flows() == [] and grants() == []


def test_loopback_needs_the_admins_permission(oauth, people, server) -> None:
    protected = oauth[1]
    admin, alice, _ = people
    with pytest.raises(InvalidInput, match='AGOR_MCP_ALLOW_LOOPBACK'):
        mcp_servers.save_server(admin, None, {'name': 'x', 'transport': 'http', 'url': protected.mcp_url,
                                              'auth': 'oauth'}, False)
    with pytest.raises(InvalidInput, match='AGOR_MCP_ALLOW_LOOPBACK'):
        mcp_oauth.authorize_url(alice, server['id'], CALLBACK, False)


@pytest.mark.parametrize('env, proxy', [
    ({'AGOR_HOST': '::1', 'AGOR_PORT': '8123'}, 'http://[::1]:8123/mcp-proxy/'),
    ({'AGOR_HOST': 'localhost', 'AGOR_PORT': '8123'}, 'http://127.0.0.1:8123/mcp-proxy/'),
    ({'AGOR_PORT': '8123', 'AGOR_MCP_URL': 'https://agents.example:9443/mcp'}, 'https://agents.example:9443/mcp-proxy/'),
])
def test_runs_reach_the_proxy_where_they_reach_the_apps_mcp_server(monkeypatch, env, proxy) -> None:
    for name, value in env.items():
        monkeypatch.setenv(name, value)
    settings = load_settings()
    assert f'{mcp_servers.app_url(settings)}/mcp-proxy/' == proxy
    assert settings.mcp_url == proxy.replace('/mcp-proxy/', '/mcp')


def test_no_server_takes_the_name_of_the_apps_own(people) -> None:
    admin = people[0]
    for name in ('agor', 'AGOR'):
        with pytest.raises(InvalidInput, match="app's own MCP server"):
            mcp_servers.save_server(admin, None, {'name': name, 'transport': 'stdio', 'command': 'true'}, True)


def test_only_admins_define_servers_and_secrets_are_never_listed(oauth, people) -> None:
    protected = oauth[1]
    admin, alice, _ = people
    with pytest.raises(Forbidden):
        add_server(alice, protected.mcp_url)
    server = mcp_servers.save_server(admin, None, {'name': 'keyed', 'transport': 'http', 'url': protected.mcp_url,
                                                   'auth': 'header', 'header_value': 'Bearer s3cret-value'}, True)
    assert server['header_set'] is True and 's3cret' not in str(mcp_servers.list_servers(admin))
    assert 'header_set' not in mcp_servers.list_servers(alice)[0]
    assert 'url' not in mcp_servers.list_servers(alice)[0]  # a URL may carry a key: admins only


def test_a_changed_url_needs_the_servers_secret_entered_again(oauth, people) -> None:
    """An admin (or a stolen admin form) pointing a server elsewhere does not carry its secret along to the new host."""
    protected = oauth[1]
    admin = people[0]
    keyed = mcp_servers.save_server(admin, None, {'name': 'keyed', 'transport': 'http', 'url': protected.mcp_url,
                                                  'auth': 'header', 'header_value': 'Bearer s3cret'}, True)
    elsewhere = protected.mcp_url.replace('/mcp', '/elsewhere')
    with pytest.raises(InvalidInput, match='URL changed: enter the header value again'):
        mcp_servers.save_server(admin, keyed['id'], {'url': elsewhere}, True)
    assert [s['url'] for s in mcp_servers.list_servers(admin)] == [protected.mcp_url]  # nothing changed
    assert mcp_servers.save_server(admin, keyed['id'], {'auth': 'header', 'enabled': False}, True)['header_set']
    moved = mcp_servers.save_server(admin, keyed['id'], {'url': elsewhere, 'header_value': 'Bearer new'}, True)
    assert moved['url'] == elsewhere and moved['header_set']
    oauth_server = add_server(admin, protected.mcp_url, name='pre', client_id='pre', client_secret='shh')
    with pytest.raises(InvalidInput, match='URL changed: enter the client secret again'):
        mcp_servers.save_server(admin, oauth_server['id'], {'url': elsewhere}, True)
    assert mcp_servers.save_server(admin, oauth_server['id'], {'url': elsewhere, 'client_secret': ''},
                                   True)['client_secret_set'] is False


# ---- Test connection (admins) ---------------------------------------------------------------------------------------

def stub_server(admin, name: str = 'stub', **fields) -> dict:
    """A stdio server (tests/mcp_stub_server.sh) whose one tool is named by its env's STUB_TOOL."""
    return mcp_servers.save_server(admin, None, {'name': name, 'transport': 'stdio', 'command': 'sh',
                                                 'args': [str(STUB_SERVER)], **fields}, True)


async def test_test_connection_lists_tools_or_says_why_not(oauth, people, server, settings) -> None:
    settings.mcp_allow_loopback = True
    auth_server, protected = oauth
    admin, alice, _ = people
    stdio = stub_server(admin, env={'STUB_TOOL': 'tagged_tool'})
    assert await mcp_probe.test_connection(admin, stdio['id'], settings) == {'ok': True, 'tools': ['tagged_tool']}
    untested = await mcp_probe.test_connection(admin, server['id'], settings)  # no grant of the admin's: discovery
    assert untested['ok'] and auth_server.url in untested['note'] and untested['tools'] == []
    connect(admin, server['id'])
    assert await mcp_probe.test_connection(admin, server['id'], settings) == {'ok': True,
                                                                           'tools': ['fake_echo', 'whoami']}
    keyed = mcp_servers.save_server(admin, None, {'name': 'keyed', 'transport': 'http', 'url': protected.mcp_url,
                                                  'auth': 'header', 'header_value': 'Bearer wrong'}, True)
    refused = await mcp_probe.test_connection(admin, keyed['id'], settings)
    assert refused['ok'] is False and '401' in refused['error'] and 'Bearer wrong' not in refused['error']
    protected.stop()
    gone = await mcp_probe.test_connection(admin, keyed['id'], settings)
    assert gone['ok'] is False and 'nreachable' in gone['error']
    with pytest.raises(Forbidden):
        await mcp_probe.test_connection(alice, stdio['id'], settings)


async def test_a_stdio_servers_variables_merge_like_a_channels(people, settings) -> None:
    """Typing one NAME=value line changes that variable only; NAME= deletes one; the others stay."""
    admin = people[0]
    stub = stub_server(admin, env={'STUB_TOOL': 'kept_tool', 'OTHER': 'x'})
    changed = mcp_servers.save_server(admin, stub['id'], {'env': {'OTHER': 'y', 'THIRD': 'z'}}, True)
    assert changed['env_names'] == ['OTHER', 'STUB_TOOL', 'THIRD']
    assert mcp_servers.save_server(admin, stub['id'], {'env': {'OTHER': '', 'THIRD': None}}, True)['env_names'] == \
        ['STUB_TOOL']
    assert await mcp_probe.test_connection(admin, stub['id'], settings) == {'ok': True, 'tools': ['kept_tool']}


@pytest.mark.skipif(os.geteuid() != 0, reason='switching to the executor account needs root')
async def test_test_connection_starts_a_stdio_server_as_the_executor_who_cannot_read_the_secrets(
        people, settings, tmp_path) -> None:
    """As root in insulated mode, an admin's stdio command runs as the executor, as a session's would: it cannot
    read the session secret, the master secret or the database."""
    assert settings.unix_user_mode == 'insulated'
    session_secret(settings.data_dir)
    unix_accounts.prepare(settings)  # what the app does at start-up
    out = tmp_path / 'seen'
    out.mkdir(mode=0o777)
    out.chmod(0o777)
    data = settings.data_dir
    probe = (f'id -un > {out}/who; for f in session_secret master_secret agor.db; do head -c 64 {data}/$f '
             f'> {out}/$f 2>&1; done; exec sh {STUB_SERVER}')
    admin = people[0]
    spy = mcp_servers.save_server(admin, None, {'name': 'spy', 'transport': 'stdio', 'command': 'sh',
                                                'args': ['-c', probe]}, True)
    assert await mcp_probe.test_connection(admin, spy['id'], settings) == {'ok': True, 'tools': ['stub']}
    assert (out / 'who').read_text().strip() == EXECUTOR
    for name in ('session_secret', 'master_secret', 'agor.db'):
        assert 'Permission denied' in (out / name).read_text(), name
    assert (data / 'session_secret').read_text().strip() not in ''.join(p.read_text() for p in out.iterdir())


def test_master_secret_rotation_keeps_grants_and_server_secrets_readable(oauth, people, settings) -> None:
    from .test_user_secrets import rotate
    protected = oauth[1]
    admin, alice, _ = people
    server = add_server(admin, protected.mcp_url, client_id='pre-registered', client_secret='shh-secret')
    mcp_servers.save_server(admin, server['id'], {'auth': 'oauth', 'client_id': ''}, True)  # back to DCR, secret kept
    connect(alice, server['id'])
    token = mcp_oauth.access_token(alice.id, server['id'])
    done = rotate(settings.data_dir)
    assert done.returncode == 0, done.stderr
    user_secrets.init(settings)
    assert mcp_oauth.access_token(alice.id, server['id']) == token
    assert asyncio.run(whoami(protected.mcp_url, token)) == 'you are alice'
