"""Users' OAuth grants for MCP servers against a real authorization server and a protected MCP server on loopback
(tests/oauth_servers.py): discovery, DCR, PKCE, the callback's checks, refresh (also racing), revocation, and the
bad inputs that must store nothing."""
from __future__ import annotations

import asyncio
import threading
from collections.abc import Iterator
from urllib.parse import parse_qsl, urlparse

import httpx
import pytest
from sqlmodel import select

from agor import db, mcp_oauth, mcp_servers, user_secrets
from agor.errors import DomainError, Forbidden, InvalidInput
from agor.mcp_discovery import McpAuthError
from agor.models import McpGrant, McpPendingFlow
from agor.secret_box import UnreadableSecret

from .oauth_servers import AuthServer, ProtectedMcp

CALLBACK = 'http://127.0.0.1:9/mcp-oauth/callback'


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


def test_loopback_needs_the_admins_permission(oauth, people, server) -> None:
    protected = oauth[1]
    admin, alice, _ = people
    with pytest.raises(InvalidInput, match='AGOR_MCP_ALLOW_LOOPBACK'):
        mcp_servers.save_server(admin, None, {'name': 'x', 'transport': 'http', 'url': protected.mcp_url,
                                              'auth': 'oauth'}, False)
    with pytest.raises(InvalidInput, match='AGOR_MCP_ALLOW_LOOPBACK'):
        mcp_oauth.authorize_url(alice, server['id'], CALLBACK, False)


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


# ---- Test connection (admins) ---------------------------------------------------------------------------------------

async def test_test_connection_lists_tools_or_says_why_not(oauth, people, server, echo_mcp) -> None:
    auth_server, protected = oauth
    admin, alice, _ = people
    stdio = mcp_servers.save_server(admin, None, {'name': 'echo', 'transport': 'stdio', 'command': echo_mcp.command,
                                                  'args': echo_mcp.args, 'env': {'ECHO_TAG': 'tagged'}}, True)
    assert await mcp_servers.test_connection(admin, stdio['id'], True) == {'ok': True, 'tools': ['fake_echo']}
    untested = await mcp_servers.test_connection(admin, server['id'], True)  # no grant of the admin's: discovery
    assert untested['ok'] and auth_server.url in untested['note'] and untested['tools'] == []
    connect(admin, server['id'])
    assert await mcp_servers.test_connection(admin, server['id'], True) == {'ok': True,
                                                                           'tools': ['fake_echo', 'whoami']}
    keyed = mcp_servers.save_server(admin, None, {'name': 'keyed', 'transport': 'http', 'url': protected.mcp_url,
                                                  'auth': 'header', 'header_value': 'Bearer wrong'}, True)
    refused = await mcp_servers.test_connection(admin, keyed['id'], True)
    assert refused['ok'] is False and '401' in refused['error'] and 'Bearer wrong' not in refused['error']
    protected.stop()
    gone = await mcp_servers.test_connection(admin, keyed['id'], True)
    assert gone['ok'] is False and 'nreachable' in gone['error']
    with pytest.raises(Forbidden):
        await mcp_servers.test_connection(alice, stdio['id'], True)


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
