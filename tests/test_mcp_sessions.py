"""Sessions use their selected MCP servers with their creator's grant: a real Claude Code run calls the protected
server through the app's proxy (a teammate prompts; the call is the creator's), the proxy refreshes a refused token
once, speaks streamable HTTP and SSE, refuses tokens of other sessions and ended runs, and a session whose creator
has no grant (or disconnected) runs without the server, with a warning."""
from __future__ import annotations

import json

import httpx
import httpx2
import pytest
from fastapi import FastAPI
from mcp import ClientSession
from mcp.client.sse import sse_client
from mcp.client.streamable_http import streamable_http_client
from sqlmodel import select

from agor import agent_sessions, auth, credentials, db, mcp_oauth, mcp_servers, repos, user_secrets
from agor.errors import Forbidden, InvalidInput
from agor.models import SessionTurn
from pages import mcp_routes

from .conftest import require_cli
from .oauth_servers import Served
from .test_agent_accounts import IS_ROOT, team  # noqa: F401 (team is a fixture)
from .test_mcp_grants import add_server, connect, oauth  # noqa: F401 (oauth is a fixture)
from .test_sessions import settle

MODE = 'strict' if IS_ROOT else 'simple'


@pytest.fixture
async def scene(team, oauth, monkeypatch):  # noqa: F811
    """Alice (owner) connected to the protected server; Bob may prompt her sessions; the app's MCP proxy served on
    the port the settings name."""
    proxy = Served()
    monkeypatch.setenv('AGOR_PORT', proxy.url.rsplit(':', 1)[1])
    monkeypatch.setenv('AGOR_HOST', '127.0.0.1')
    monkeypatch.setenv('AGOR_MCP_ALLOW_LOOPBACK', '1')
    seeded = await team(MODE)
    api = FastAPI()
    mcp_routes.register_proxy(seeded.settings, api)
    proxy.serve(api)
    alice = seeded.owner
    repos.set_level(alice, seeded.worktree.id, 'prompt')
    auth_server, protected = oauth
    seeded.server = add_server(alice, protected.mcp_url)
    seeded.sse = add_server(alice, protected.sse_url, name='protected-sse', transport='sse')
    connect(alice, seeded.server['id'])
    connect(alice, seeded.sse['id'])
    seeded.auth_server, seeded.protected = auth_server, protected
    yield seeded
    proxy.stop()


def running_turn(agent_id: str) -> str:
    """Mark the session's queued turn running (as the worker does), without a worker: the proxy serves its runs."""
    with db.transaction() as session:
        turn = session.exec(select(SessionTurn).where(SessionTurn.session_id == agent_id)).first()
        turn.status = 'running'
        return turn.id


def idle_session(seeded, user, servers: list[str]) -> tuple[str, str]:
    """A shell session of `user` with the servers selected and a turn marked running; (session id, turn id)."""
    agent = agent_sessions.create(user, seeded.worktree.id, 'claude-code', mcp_server_ids=servers)
    with db.transaction() as session:
        turn = SessionTurn(session_id=agent.id, created_by=user.id, prompt='x', status='running')
        session.add(turn)
    return agent.id, turn.id


async def post(url: str, headers: dict[str, str]) -> httpx.Response:
    async with httpx.AsyncClient() as client:
        return await client.post(url, json={}, headers=headers)


async def call_whoami(server: mcp_servers.runtime.McpServer) -> str:
    if server.transport == 'sse':
        async with sse_client(server.url, headers=server.headers) as (read, write), \
                ClientSession(read, write) as session:
            await session.initialize()
            return (await session.call_tool('whoami', {})).content[0].text
    async with httpx2.AsyncClient(headers=server.headers) as client, \
            streamable_http_client(server.url, http_client=client) as (read, write), \
            ClientSession(read, write) as session:
        await session.initialize()
        return (await session.call_tool('whoami', {})).content[0].text


async def test_claude_calls_the_protected_server_with_the_creators_grant_when_a_teammate_prompts(
        scene, fake_model) -> None:
    require_cli('claude-code')
    alice, bob = scene.owner, scene.users['bob']
    user_secrets.set_key(alice, 'ANTHROPIC_API_KEY', 'sk-ant-alice-key')
    credentials.configure({'ANTHROPIC_BASE_URL': fake_model.url})
    agent = agent_sessions.create(alice, scene.worktree.id, 'claude-code', model='fake-model',
                                  permission_mode='bypass', mcp_server_ids=[scene.server['id']])
    agent_sessions.prompt(bob, agent.id, 'Echo it [[mcp:hello]]')
    detail = await settle(agent.id, 'awaiting_input', 'failed', timeout=120)
    assert detail['status'] == 'awaiting_input', detail
    entries = agent_sessions.transcript(bob, agent.id)
    [call] = [e for e in entries if e['kind'] == 'tool_call']
    assert call['data']['server'] == 'protected' and call['data']['grant'] == 'Alice'
    assert "Alice's grant" in call['text'] and 'hello' in call['text']
    [result] = [e for e in entries if e['kind'] == 'tool_result']
    assert 'alice says: hello' in result['text']
    assert scene.protected.subjects == ['alice']  # the MCP server saw Alice's token, via the proxy
    access = set(scene.auth_server.provider.access)
    config = next((scene.settings.data_dir / 'agent-homes').rglob('agor-mcp.json')).read_text()
    assert '/mcp-proxy/' in config and not any(token in config for token in access)
    assert not any(token in json.dumps(entries) for token in access)


async def test_the_proxy_uses_the_creators_current_token_refreshing_a_refused_one_once(scene) -> None:
    alice = scene.owner
    agent_id, turn_id = idle_session(scene, alice, [scene.server['id'], scene.sse['id']])
    run = mcp_servers.run_servers(scene.settings, agent_id, turn_id, alice)
    assert run.warnings == [] and {s.name for s in run.servers} == {'protected', 'protected-sse'}
    assert all(s.url.startswith(f'{mcp_servers.app_url(scene.settings)}/mcp-proxy/') for s in run.servers)
    http, sse = sorted(run.servers, key=lambda s: s.name)
    assert await call_whoami(http) == 'you are alice'
    assert await call_whoami(sse) == 'you are alice'
    scene.auth_server.provider.expire_access_tokens()  # the AS ended the tokens early: the grant does not know
    assert await call_whoami(http) == 'you are alice'
    assert scene.auth_server.provider.refreshes == 1
    assert scene.protected.subjects == ['alice'] * 3


async def test_proxy_tokens_work_only_for_their_session_and_running_turn(scene) -> None:
    alice, bob = scene.owner, scene.users['bob']
    agent_id, turn_id = idle_session(scene, alice, [scene.server['id']])
    bobs_id, bobs_turn = idle_session(scene, bob, [scene.server['id']])
    bobs_token = mcp_servers.proxy_token(scene.settings, bobs_id, bobs_turn, scene.server['id'])
    with pytest.raises(Forbidden):  # Bob's run's token does not open Alice's session (and so her grant)
        mcp_servers.proxy_target(scene.settings, agent_id, 'protected', bobs_token)
    forged = f'{agent_id}.{turn_id}.{scene.server["id"]}.{bobs_token.rsplit(".", 1)[1]}'
    with pytest.raises(Forbidden):
        mcp_servers.proxy_target(scene.settings, agent_id, 'protected', forged)
    token = mcp_servers.proxy_token(scene.settings, agent_id, turn_id, scene.server['id'])
    url = f'{mcp_servers.app_url(scene.settings)}/mcp-proxy/{agent_id}/protected'
    with db.transaction() as session:
        session.get(SessionTurn, turn_id).status = 'completed'
    answer = await post(url, {'Authorization': f'Bearer {token}'})
    assert answer.status_code == 403 and 'ended' in answer.json()['detail']
    assert scene.protected.subjects == []


async def test_the_proxy_forwards_only_to_the_servers_url_and_the_endpoint_an_sse_server_announced(scene) -> None:
    """An agent holding its run's proxy token cannot send the creator's token to other paths of the server's origin
    (nor get the grant marked for re-authorization through them)."""
    alice = scene.owner
    agent_id, turn_id = idle_session(scene, alice, [scene.server['id'], scene.sse['id']])
    run = mcp_servers.run_servers(scene.settings, agent_id, turn_id, alice)
    http, sse = sorted(run.servers, key=lambda s: s.name)
    assert await call_whoami(sse) == 'you are alice'  # through the announced endpoint, rewritten to /o/<mac>/…
    [announced] = [r.split(' ', 1)[1] for r in scene.protected.requests if r.startswith('POST /messages/')][:1]
    scene.protected.requests.clear()
    for server in (http, sse):
        for path in ('mcp', '.well-known/oauth-protected-resource/mcp', announced.lstrip('/'),
                     f'forged-mac{announced}'):
            answer = await post(f'{server.url}/o/{path}', server.headers)
            assert answer.status_code == 403 and 'announced' in answer.json()['detail'], (server.name, path)
    assert scene.protected.requests == []
    assert mcp_servers.grant_states(alice)[scene.server['id']]['status'] == 'connected'


async def test_a_deactivated_creators_running_turn_loses_their_grant_at_once(scene) -> None:
    bob, owner = scene.users['bob'], scene.owner
    connect(bob, scene.server['id'])  # Bob, a member, connected his own grant and runs a session with it
    agent_id, turn_id = idle_session(scene, bob, [scene.server['id']])
    [server] = mcp_servers.run_servers(scene.settings, agent_id, turn_id, bob).servers
    assert await call_whoami(server) == 'you are alice'  # the AS's subject: the grant works
    auth.set_active(owner, bob.id, False)
    answer = await post(server.url, server.headers)
    assert answer.status_code == 403 and 'deactivated' in answer.json()['detail']
    assert scene.protected.subjects == ['alice']  # nothing more reached the server with his token


async def test_a_session_without_its_creators_grant_runs_without_the_server(scene) -> None:
    bob = scene.users['bob']
    bobs_id, bobs_turn = idle_session(scene, bob, [scene.server['id']])
    assert mcp_servers.session_servers(bob, bobs_id)['missing'] == ['protected']
    run = mcp_servers.run_servers(scene.settings, bobs_id, bobs_turn, bob)
    assert run.servers == [] and 'protected left out' in run.warnings[0] and 'Bob' in run.warnings[0]
    # Even a bearer of Bob's run for the server finds no grant of Bob's: Alice's is never used.
    token = mcp_servers.proxy_token(scene.settings, bobs_id, bobs_turn, scene.server['id'])
    answer = await post(f'{mcp_servers.app_url(scene.settings)}/mcp-proxy/{bobs_id}/protected',
                        {'Authorization': f'Bearer {token}'})
    assert answer.status_code == 401 and 'connect' in answer.json()['detail']
    assert scene.protected.subjects == []


async def test_disconnect_revokes_and_the_session_loses_the_server(scene) -> None:
    alice = scene.owner
    agent_id, turn_id = idle_session(scene, alice, [scene.server['id']])
    [server] = mcp_servers.run_servers(scene.settings, agent_id, turn_id, alice).servers
    assert await call_whoami(server) == 'you are alice'
    assert mcp_oauth.disconnect(alice, scene.server['id']) is True
    assert scene.auth_server.provider.revoked
    answer = await post(server.url, server.headers)  # the run in progress loses it at once
    assert answer.status_code == 401
    run = mcp_servers.run_servers(scene.settings, agent_id, turn_id, alice)
    assert run.servers == [] and 'protected left out' in run.warnings[0]


async def test_only_the_creator_chooses_a_sessions_servers(scene) -> None:
    alice, bob = scene.owner, scene.users['bob']
    agent_id, _ = idle_session(scene, alice, [])
    with pytest.raises(Forbidden):
        mcp_servers.set_session_servers(bob, agent_id, [scene.server['id']])
    with pytest.raises(InvalidInput):
        mcp_servers.set_session_servers(alice, agent_id, ['no-such-server'])
    mcp_servers.set_session_servers(alice, agent_id, [scene.server['id']])
    assert mcp_servers.session_servers(bob, agent_id)['selected'] == [scene.server['id']]


async def test_a_header_server_gets_its_secret_header_from_the_proxy_only(scene) -> None:
    alice = scene.owner
    token = mcp_oauth.access_token(alice.id, scene.server['id'])  # a token the server accepts, as an admin's header
    keyed = mcp_servers.save_server(alice, None, {'name': 'keyed', 'transport': 'http', 'auth': 'header',
                                                  'url': scene.protected.mcp_url,
                                                  'header_value': f'Bearer {token}'}, True)
    agent_id, turn_id = idle_session(scene, alice, [keyed['id']])
    [server] = mcp_servers.run_servers(scene.settings, agent_id, turn_id, alice).servers
    assert token not in json.dumps(server.headers) and '/mcp-proxy/' in server.url
    assert await call_whoami(server) == 'you are alice'
    scene.protected.stop()  # the server gone: a clear answer, no traceback
    answer = await post(server.url, server.headers)
    assert answer.status_code == 502 and 'unreachable' in answer.json()['detail']


async def test_the_transcript_says_which_server_was_left_out(scene) -> None:
    bob = scene.users['bob']
    agent = agent_sessions.create(bob, scene.worktree.id, 'shell', 'echo ran', mcp_server_ids=[scene.server['id']])
    await settle(agent.id, 'completed')
    notes = [e['text'] for e in agent_sessions.transcript(bob, agent.id) if e['kind'] == 'system']
    assert any('protected left out' in note and 'Bob has no working grant' in note for note in notes)
