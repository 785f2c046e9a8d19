"""The message gateway with a fake Slack on loopback (tests/fake_slack.py): the real app's webhook verifies Slack's
signature and answers at once; a mapped person's message runs a real shell session as their app user with the
channel's and their own variables, and the answer arrives in the same thread; retries run once; an unmapped person
is told how to link, and a one-time code links them; a board prompt in a chat session is mirrored to its thread."""
from __future__ import annotations

import asyncio
import json
import socket
import time
from urllib.parse import urlparse

import httpx
import pytest
from sqlmodel import select

from agor import agent_sessions, boards, credentials, db, repos, user_secrets
from agor.config import load_settings
from agor.errors import Forbidden, InvalidInput
from agor.gateway import channels, links, relay, service
from agor.models import AgentSession, GatewayEvent, GatewayThread, Role, SessionTurn
from agor.runtimes import registry
from agor.session_worker import SessionWorkers

from .conftest import agent_account, seed_board
from .fake_slack import FakeSlack, message_event, send, signed
from .test_sessions import settle, wait_for

SECRET = 'slack-signing-secret-for-tests'
TOKEN = 'xoxb-bot-token-for-tests'
# Slack escapes &, < and > in message text; the shell sees them as typed
# (the values themselves would come back as ***: they are secrets)


def check_env(own: str, other: str) -> str:
    return ('[ "$CHANNEL_VAR" = channel-value ] &amp;&amp; echo channel-ok; '
            f'[ "$TEAM_TOKEN" = {own}-token ] &amp;&amp; echo own-ok; [ "$TEAM_TOKEN" = {other}-token ] || echo not-other')


@pytest.fixture
def fake_slack():
    fake = FakeSlack()
    yield fake
    fake.close()


def make_channel(seeded, fake: FakeSlack, runtime: str = 'shell',
                 env: dict[str, str] | None = None) -> str:
    """Alice and Bob each with a TEAM_TOKEN; Alice's admin sets up a Slack channel on auth-fix (`runtime` sessions)
    with `env` (CHANNEL_VAR), and maps Slack user UALICE to Alice."""
    alice, bob = seeded.owner, seeded.users['bob']
    user_secrets.set_env(alice, 'TEAM_TOKEN', 'alice-token')
    user_secrets.set_env(bob, 'TEAM_TOKEN', 'bob-token')
    channel = channels.save_channel(alice, None, {
        'name': '#ops', 'signing_secret': SECRET, 'bot_token': TOKEN, 'board_id': seeded.board.id,
        'worktree_id': seeded.worktree.id, 'runtime': runtime, 'api_base': fake.api_base,
        'env': env or {'CHANNEL_VAR': 'channel-value'}})
    channels.map_identity(alice, channel['id'], 'UALICE', alice.id)
    return channel['id']


async def wait_posts(fake: FakeSlack, thread: str, needle: str, timeout: float = 30) -> list[str]:
    return await wait_for(lambda: (posts := fake.posts(thread)) and any(needle in p for p in posts) and posts,
                          timeout)


def sessions_of(worktree_id: str) -> list[AgentSession]:
    with db.read() as session:
        return list(session.exec(select(AgentSession).where(AgentSession.worktree_id == worktree_id)))


def turns_of(session_id: str) -> list[str]:
    with db.read() as session:
        return list(session.exec(select(SessionTurn.prompt).where(SessionTurn.session_id == session_id)))


# ---- through the real app --------------------------------------------------------------------------------------------

@pytest.fixture
def app_channel(board_app, fake_slack):
    server, seeded = board_app
    user_secrets.init(load_settings(data_dir=str(server.data_dir)))  # the app's master secret
    channel_id = make_channel(seeded, fake_slack)
    return server, seeded, f'{server.url}/gateway/slack/{channel_id}'


def test_only_a_genuinely_signed_request_passes_and_a_refused_one_stores_nothing(app_channel, fake_slack):
    server, seeded, url = app_channel
    body = message_event('Ev1', 'UALICE', 'echo hello', '100.1')
    tampered = body.replace(b'echo hello', b'rm -rf ~')
    old = int(time.time()) - 301
    refused = {
        'wrong secret': send(url, 'not-the-secret', body),
        'old timestamp': httpx.post(url, content=body, headers=signed(SECRET, body, old)),
        'tampered body': httpx.post(url, content=tampered, headers=signed(SECRET, body)),
        'missing headers': httpx.post(url, content=body, headers={'Content-Type': 'application/json'}),
    }
    reasons = {case: (answer.status_code, answer.json()['detail']) for case, answer in refused.items()}
    assert reasons == {
        'wrong secret': (401, 'The signature does not match this channel\'s signing secret.'),
        'old timestamp': (401, 'The request is more than 5 minutes old (or from the future): refused as a possible '
                               'replay.'),
        'tampered body': (401, 'The signature does not match this channel\'s signing secret.'),
        'missing headers': (401, 'The request has no X-Slack-Signature or X-Slack-Request-Timestamp header.')}
    with db.read() as session:
        assert session.exec(select(GatewayEvent)).all() == []
    assert sessions_of(seeded.worktree.id) == [] and fake_slack.calls == []
    assert httpx.post(url.rsplit('/', 1)[0] + '/no-such-channel', content=body,
                      headers=signed(SECRET, body)).status_code == 404
    challenge = json.dumps({'type': 'url_verification', 'challenge': 'c-123'}).encode()
    assert send(url, SECRET, challenge).json() == {'challenge': 'c-123'}
    answer = send(url, SECRET, body)
    assert answer.status_code == 200 and answer.json() == {'ok': True}
    asyncio.run(wait_posts(fake_slack, '100.1', 'hello'))
    assert [a.title for a in sessions_of(seeded.worktree.id)] == ['echo hello']


def test_an_oversized_body_is_refused_as_soon_as_it_passes_the_limit(app_channel):
    """A chunked body (no Content-Length) is not buffered whole: the app answers 413 once it passes the limit, while
    the sender is still sending (here it never ends its body)."""
    _, _, url = app_channel
    address = urlparse(url)
    with socket.create_connection((address.hostname, address.port), timeout=20) as raw:
        raw.sendall(f'POST {address.path} HTTP/1.1\r\nHost: {address.netloc}\r\nContent-Type: application/json\r\n'
                    'Transfer-Encoding: chunked\r\n\r\n'.encode())
        chunk = b'x' * 65536
        for _ in range(service.MAX_BODY // len(chunk) + 2):
            raw.sendall(b'%x\r\n%s\r\n' % (len(chunk), chunk))
        answer = b''
        while not answer.endswith(b'}'):  # the headers, then the JSON body
            answer += raw.recv(4096)
    answer = answer.decode()
    assert answer.startswith('HTTP/1.1 413') and answer.endswith('{"detail":"The request body is too large."}')


def test_a_mapped_persons_message_runs_as_their_user_and_the_answer_reaches_the_thread(app_channel, fake_slack):
    server, seeded, url = app_channel
    body = message_event('Ev2', 'UALICE', check_env('alice', 'bob'), '100.1')
    assert send(url, SECRET, body).json() == {'ok': True}
    retry = send(url, SECRET, body, **{'X-Slack-Retry-Num': '1', 'X-Slack-Retry-Reason': 'http_timeout'})
    assert retry.status_code == 200 and retry.json() == {'ok': True, 'duplicate': True}
    posts = asyncio.run(wait_posts(fake_slack, '100.1', 'channel-ok'))
    assert posts[-1].split() == ['channel-ok', 'own-ok', 'not-other']
    assert all(call.token == f'Bearer {TOKEN}' and call.body['channel'] == 'C0TEAM' for call in fake_slack.calls)
    assert fake_slack.updates() and fake_slack.updates()[-1].startswith('Done after')
    [agent] = sessions_of(seeded.worktree.id)
    assert agent.created_by == seeded.owner.id and turns_of(agent.id) == [check_env('alice', 'bob').replace('&amp;', '&')]
    detail = agent_sessions.get(seeded.users['bob'], agent.id)
    assert detail['origin'] == 'Slack · #ops · UALICE' and detail['creator'] == 'Alice'  # the session header's
    [card] = boards.board_state(seeded.users['bob'], seeded.board.id)['cards']
    assert [chip['origin'] for chip in card['sessions']] == ['Slack · #ops · UALICE']
    send(url, SECRET, message_event('Ev3', 'UALICE', 'echo second', '100.2', thread_ts='100.1'))
    asyncio.run(wait_posts(fake_slack, '100.1', 'second'))
    assert [a.id for a in sessions_of(seeded.worktree.id)] == [agent.id]  # the thread's session, continued
    assert turns_of(agent.id)[1:] == ['echo second']
    assert 'Ev2' not in repr(fake_slack.posts()) and SECRET not in server.log.read_text()


# ---- in this process (the board prompts, linking, long answers) -----------------------------------------------------

@pytest.fixture
async def scene(settings, git_repo, fake_slack):
    seeded = seed_board(settings, git_repo, bob=Role.member)
    workers, poster = SessionWorkers(settings), relay.Relay()
    await workers.start()
    await poster.start()
    seeded.channel_id = make_channel(seeded, fake_slack)
    yield seeded
    await poster.stop()
    await workers.stop_all()


async def deliver(channel_id: str, body: bytes) -> service.Answer:
    """What the webhook route does with a signed request: answer, then handle the message."""
    answer = await asyncio.to_thread(service.receive, 'slack', channel_id, signed(SECRET, body), body)
    if answer.message is not None:
        await service.handle(answer.channel, answer.message)
    return answer


async def test_an_unmapped_person_is_told_how_to_link_and_their_code_links_them(scene, fake_slack):
    bob = scene.users['bob']
    await deliver(scene.channel_id, message_event('Ev1', 'UBOB', 'echo "$TEAM_TOKEN"', '200.1'))
    [reply] = await wait_posts(fake_slack, '200.1', 'Settings → Chat accounts')
    assert reply.startswith('Hi <@UBOB>: I do not know who you are in Agor yet, so nothing ran.')
    assert sessions_of(scene.worktree.id) == []
    code = links.new_code(bob)['code']
    await deliver(scene.channel_id, message_event('Ev2', 'UBOB', code, '201.1'))
    await wait_posts(fake_slack, '201.1', 'Linked: your messages here now run as Bob')
    await deliver(scene.channel_id, message_event('Ev3', 'UEVE', code, '202.1'))  # used up
    await wait_posts(fake_slack, '202.1', 'That code is unknown, used or expired')
    assert [item['external_id'] for item in links.linked(bob)] == ['UBOB']
    await deliver(scene.channel_id, message_event('Ev4', 'UBOB', check_env('bob', 'alice'), '203.1'))
    posts = await wait_posts(fake_slack, '203.1', 'channel-ok')
    assert posts[-1].split() == ['channel-ok', 'own-ok', 'not-other']
    [agent] = sessions_of(scene.worktree.id)
    assert agent.created_by == bob.id
    with pytest.raises(Forbidden):
        links.unlink(scene.owner, links.linked(bob)[0]['id'])
    links.unlink(bob, links.linked(bob)[0]['id'])
    await deliver(scene.channel_id, message_event('Ev5', 'UBOB', 'echo again', '204.1'))
    await wait_posts(fake_slack, '204.1', 'I do not know who you are')


async def test_a_board_prompt_in_a_chat_session_is_mirrored_and_long_answers_are_chunked(scene, fake_slack):
    alice, bob = scene.owner, scene.users['bob']
    await deliver(scene.channel_id, message_event('Ev1', 'UALICE', 'echo first', '300.1'))
    await wait_posts(fake_slack, '300.1', 'first')
    [agent] = sessions_of(scene.worktree.id)
    await settle(agent.id, 'completed')
    repos.set_level(alice, scene.worktree.id, 'prompt')
    agent_sessions.prompt(bob, agent.id, 'seq 1 2000')
    await wait_for(lambda: any(p.endswith('\n2000') for p in fake_slack.posts('300.1')))
    posts = fake_slack.posts('300.1')
    mirrored = posts.index('Bob prompted this session on the Agor board:\n> seq 1 2000')
    answer = [p for p in posts[mirrored + 1:] if not p.startswith(':hourglass')]
    assert len(answer) == 3 and all(len(part) <= 3500 for part in answer)
    assert ''.join(answer) == '\n'.join(str(n) for n in range(1, 2001))
    assert 'echo first' not in ' '.join(posts)  # the chat's own prompt is not echoed back


async def test_a_refused_run_is_explained_in_the_thread(scene, fake_slack):
    """The mapped user's role and level decide, as on the board: a viewer's message runs nothing."""
    from agor import auth
    dan = auth.create_user(scene.owner, 'dan@example.com', 'Dan', 'correct-horse', Role.viewer)
    channels.map_identity(scene.owner, scene.channel_id, 'UDAN', dan.id)
    await deliver(scene.channel_id, message_event('Ev1', 'UDAN', 'echo hi', '400.1'))
    [reply] = await wait_posts(fake_slack, '400.1', 'Nothing ran')
    assert reply == ('Nothing ran: Your role (viewer) only views worktrees; to start sessions in it you need member '
                     'or higher.')
    assert sessions_of(scene.worktree.id) == []


def test_channels_are_for_admins_and_their_secrets_are_write_only(settings, git_repo, fake_slack):
    seeded = seed_board(settings, git_repo, bob=Role.member)
    channel_id = make_channel(seeded, fake_slack)
    with pytest.raises(Forbidden):
        channels.listing(seeded.users['bob'])
    with pytest.raises(Forbidden):
        channels.save_channel(seeded.users['bob'], channel_id, {'name': 'x'})
    [listed] = channels.listing(seeded.owner)['channels']
    assert listed['env_names'] == ['CHANNEL_VAR'] and SECRET not in repr(listed) and TOKEN not in repr(listed)
    assert 'channel-value' not in repr(listed)
    changed = channels.save_channel(seeded.owner, channel_id, {**listed, 'env': {'CHANNEL_VAR': None}})
    assert changed['env_names'] == [] and channels.opened(channel_id).signing_secret == SECRET  # kept
    assert SECRET not in repr(channels.opened(channel_id)) and TOKEN not in repr(channels.opened(channel_id))
    with pytest.raises(InvalidInput, match='API base changed: enter the bot token again'):
        channels.save_channel(seeded.owner, channel_id, {**listed, 'api_base': 'https://slack.example/api'})
    assert channels.opened(channel_id).api_base == fake_slack.api_base  # nothing changed
    channels.save_channel(seeded.owner, channel_id, {**listed, 'api_base': 'https://slack.example/api',
                                                     'bot_token': 'xoxb-new'})
    assert channels.opened(channel_id).bot_token == 'xoxb-new'


async def test_progress_is_one_message_edited_at_most_every_few_seconds(scene, fake_slack):
    command = 'for i in 1 2 3 4 5 6 7; do echo "step $i"; sleep 1; done'
    await deliver(scene.channel_id, message_event('Ev1', 'UALICE', command, '500.1'))
    await wait_posts(fake_slack, '500.1', 'step 7', timeout=40)
    [status, answer] = fake_slack.posts('500.1')
    assert status == ':hourglass_flowing_sand: Shell is working…' and answer.splitlines()[-1] == 'step 7'
    edits = fake_slack.update_calls()
    assert len({call.body['ts'] for call in edits}) == 1  # the one status message
    working = [call for call in edits if 'is working' in call.body['text']]
    assert working and any('> step ' in call.body['text'] for call in working)
    assert all(b.at - a.at >= relay.UPDATE_SECONDS - 0.2 for a, b in zip(edits, edits[1:-1]))
    assert edits[-1].body['text'].startswith('Done after')


async def test_a_chat_prompt_obeys_the_prompt_limits_like_the_board(scene, fake_slack):
    await deliver(scene.channel_id, message_event('Ev1', 'UALICE', '€' * 40_000, '650.1'))  # 120 KB in UTF-8
    [reply] = await wait_posts(fake_slack, '650.1', 'Nothing ran')
    assert reply == 'Nothing ran: A prompt is limited to 100 KB.' and sessions_of(scene.worktree.id) == []


async def test_a_disabled_channel_runs_nothing(scene, fake_slack):
    [listed] = channels.listing(scene.owner)['channels']
    channels.save_channel(scene.owner, scene.channel_id, {**listed, 'enabled': False})
    answer = await deliver(scene.channel_id, message_event('Ev1', 'UALICE', 'echo hi', '600.1'))
    assert answer.body == {'ok': True, 'detail': 'This channel is disabled: the event was ignored.'}
    assert sessions_of(scene.worktree.id) == [] and fake_slack.calls == []


def test_rotating_the_master_secret_re_encrypts_the_channels_secrets(settings, git_repo, fake_slack, capsys):
    from .test_user_secrets import rotate_here
    seeded = seed_board(settings, git_repo, bob=Role.member)
    channel_id = make_channel(seeded, fake_slack)
    code, out, err = rotate_here(settings.data_dir, capsys)
    assert (code, out.split(';')[0]) == (0, 'Re-encrypted 5 secrets'), err  # 2 + 1 env, 2 of users
    user_secrets.init(settings)
    opened = channels.opened(channel_id)
    assert (opened.signing_secret, opened.bot_token) == (SECRET, TOKEN)


def test_a_chat_sessions_runs_get_the_channels_variables_and_its_provider_key_counts(settings, git_repo, fake_slack):
    """A channel's variables reach the sessions it started, and only those; a provider key among them lets a
    session of that runtime run though neither the operator nor its creator has one."""
    seeded = seed_board(settings, git_repo, bob=Role.member)
    alice = seeded.owner
    channel_id = make_channel(seeded, fake_slack, 'claude-code', {'ANTHROPIC_API_KEY': 'sk-channel'})
    credentials.configure({})  # no operator key
    user_secrets.set_key(alice, 'ANTHROPIC_API_KEY', 'sk-alice')  # so that the sessions can be created
    from_chat, from_board = (agent_sessions.create(alice, seeded.worktree.id, 'claude-code') for _ in range(2))
    user_secrets.delete_key(alice, 'ANTHROPIC_API_KEY')
    with db.transaction() as session:
        session.add(GatewayThread(channel_id=channel_id, external_channel='C1', thread_ts='1.1',
                                  session_id=from_chat.id, external_user='UALICE'))
    account = agent_account()
    assert credentials.merged_env(alice, account, session_id=from_chat.id).env['ANTHROPIC_API_KEY'] == 'sk-channel'
    assert 'ANTHROPIC_API_KEY' not in credentials.merged_env(alice, account, session_id=from_board.id).env
    claude = registry.get('claude-code')
    with db.read() as session:
        credentials.require_provider_key(session, claude, alice, alice, from_chat.id)
        with pytest.raises(InvalidInput, match='needs an API key'):
            credentials.require_provider_key(session, claude, alice, alice, from_board.id)
    agent_sessions.prompt(alice, from_chat.id, 'go on')  # queued: the channel's key serves it
    with pytest.raises(InvalidInput, match='needs an API key'):
        agent_sessions.prompt(alice, from_board.id, 'go on')


async def test_a_chat_session_gets_the_channels_mcp_servers_with_the_writers_grants(scene, fake_slack, settings):
    """The channel's servers are attached to the sessions it starts; an OAuth server the writer has no grant for is
    left out with the reason in the transcript, a server deleted since is skipped."""
    from agor import mcp_servers
    alice = scene.owner
    user_secrets.init(settings)
    echo = mcp_servers.save_server(alice, None, {'name': 'echo', 'transport': 'stdio', 'command': 'true'}, True)
    tracker = mcp_servers.save_server(alice, None, {'name': 'tracker', 'transport': 'http', 'auth': 'oauth',
                                                    'url': 'http://127.0.0.1:9/mcp'}, True)
    gone = mcp_servers.save_server(alice, None, {'name': 'gone', 'transport': 'stdio', 'command': 'true'}, True)
    channels.save_channel(alice, scene.channel_id, {
        'name': '#ops', 'board_id': scene.board.id, 'worktree_id': scene.worktree.id, 'runtime': 'shell',
        'api_base': fake_slack.api_base, 'mcp_server_ids': [echo['id'], tracker['id'], gone['id']]})
    mcp_servers.delete_server(alice, gone['id'])
    await deliver(scene.channel_id, message_event('Ev1', 'UALICE', 'echo hi', '500.1'))
    await wait_posts(fake_slack, '500.1', 'hi')
    [agent] = sessions_of(scene.worktree.id)
    selection = mcp_servers.session_servers(alice, agent.id)
    assert sorted(selection['selected']) == sorted([echo['id'], tracker['id']])
    texts = [entry['text'] for entry in agent_sessions.transcript(alice, agent.id)]
    assert any(text.startswith('MCP server tracker left out: Alice has no working grant') for text in texts), texts
