"""The app as an MCP server for its own agents (`/mcp`) and approvals in the UI.

Real agent CLIs (Claude Code and Codex) run in the real app against tests/fake_model_server.py, whose `[[call:TOOL
JSON]]` marker makes the model call one of the app's tools; what they do is observed as teammates observe it, through
real websocket clients on the board page (tests/ws_client.py). The tokens are checked in-process and over HTTP.
"""
from __future__ import annotations

import asyncio
import json
import time
from collections.abc import Callable
from datetime import timedelta
from pathlib import Path
from types import SimpleNamespace
from typing import Any

import httpx
import pytest
from sqlmodel import col, select

from agor import agent_sessions, agent_tokens, agent_tools, approvals, auth, db, repos, run_records, user_secrets
from agor.config import Settings, load_settings
from agor.errors import Forbidden, NotFound
from agor.models import AgentSession, Approval, Comment, Notification, Role, SessionTurn, User

from .app_server import login_cookie, running_app
from .conftest import require_cli, seed_board
from .fake_model_server import FakeModelServer
from .ws_client import WsPage

TIMEOUT = 8  # AGOR_APPROVAL_TIMEOUT_SECONDS of the app the tests start
FINISHED = ('completed', 'failed', 'stopped')  # a turn's status once its run ended


# ---- tokens and tools, in-process ----------------------------------------------------------------------------------

@pytest.fixture
def running(settings, git_repo, instance_keys):
    """Alice's Claude Code session with its first turn claimed (running, as a worker would), Bob a member, and a
    session of Bob's in another worktree."""
    seeded = seed_board(settings, git_repo, bob=Role.member)
    agent = agent_sessions.create(seeded.owner, seeded.worktree.id, 'claude-code', 'hello')
    _, turn, _, _ = run_records.claim_next_turn(agent.id)
    other_worktree = repos.create_worktree(settings, seeded.users['bob'], seeded.worktree.repo_id, 'other')
    others = agent_sessions.create(seeded.users['bob'], other_worktree.id, 'claude-code')
    return SimpleNamespace(**vars(seeded), agent=agent, turn=turn, others=others)


def test_a_token_acts_as_the_sessions_creator_while_its_turn_runs(settings, running):
    token = agent_tokens.mint(settings, running.owner.id, running.agent.id, running.turn.id)
    caller = agent_tools.caller(settings, token)
    assert (caller.user.id, caller.session_id, caller.worktree_id, caller.board_id) == \
        (running.owner.id, running.agent.id, running.worktree.id, running.board.id)

    run_records.finish_turn(running.agent.id, running.turn.id, 'completed')
    with pytest.raises(agent_tokens.InvalidToken, match='run this token was made for has ended'):
        agent_tools.caller(settings, token)


@pytest.mark.parametrize('forge, says', [
    (lambda s, r: agent_tokens.mint(s, r.owner.id, r.agent.id, r.turn.id, lifetime=timedelta(seconds=-5)), 'expired'),
    (lambda s, r: agent_tokens.mint(s, r.users['bob'].id, r.others.id, r.turn.id), 'has ended'),  # another session's
    (lambda s, r: agent_tokens.mint(s, r.users['bob'].id, r.agent.id, r.turn.id), 'no longer exists'),  # not its user
    (lambda s, r: agent_tokens.mint(Settings(data_dir=s.data_dir, mcp_url='http://elsewhere:1/mcp'), r.owner.id,
                                    r.agent.id, r.turn.id), 'not valid'),  # another endpoint's
    (lambda s, r: agent_tokens.mint(Settings(data_dir=s.data_dir, master_secret='another instance ' * 3), r.owner.id,
                                    r.agent.id, r.turn.id), 'not valid'),  # signed with another instance's key
])
def test_tokens_that_are_refused(settings, running, forge: Callable[..., str], says: str):
    with pytest.raises(agent_tokens.InvalidToken, match=says):
        agent_tools.caller(settings, forge(settings, running))


def test_the_user_is_loaded_on_every_call(settings, running):
    """Deactivated: refused; demoted to viewer: reads, but writes are refused by the same rules as in the UI."""
    token = agent_tokens.mint(settings, running.owner.id, running.agent.id, running.turn.id)
    with db.transaction() as session:
        session.get(User, running.owner.id).role = 'viewer'
    caller = agent_tools.caller(settings, token)
    assert agent_tools.list_boards(caller)[0]['name'] == 'Sprint'
    with pytest.raises(Forbidden, match='comment'):
        agent_tools.post_comment(caller, 'hello')
    with db.transaction() as session:
        session.get(User, running.owner.id).active = False
    with pytest.raises(Forbidden, match='deactivated'):
        agent_tools.caller(settings, token)


def test_transcripts_of_its_worktrees_sessions_only(settings, running):
    caller = agent_tools.caller(settings, agent_tokens.mint(settings, running.owner.id, running.agent.id,
                                                            running.turn.id))
    assert agent_tools.read_transcript(caller)[-1]['text'] == 'hello'
    with pytest.raises(NotFound, match='this worktree'):
        agent_tools.read_transcript(caller, running.others.id)  # Alice (the owner) could read it in the UI


def test_notes_and_links_are_the_card_dialogs(settings, running):
    caller = agent_tools.caller(settings, agent_tokens.mint(settings, running.owner.id, running.agent.id,
                                                            running.turn.id))
    agent_tools.set_worktree_notes(caller, 'Migrating the schema')
    agent_tools.set_worktree_links(caller, pr_url='https://example.com/pr/7')
    assert {k: v for k, v in repos.worktree_details(running.owner, running.worktree.id).items()
            if k in ('notes', 'issue_url', 'pr_url')} == {'notes': 'Migrating the schema', 'issue_url': '',
                                                         'pr_url': 'https://example.com/pr/7'}


def test_the_first_answer_wins_and_a_viewer_cannot_answer(settings, running):
    viewer = auth.create_user(running.owner, 'vic@example.com', 'Vic', 'correct-horse', Role.viewer)
    asked = approvals.request(running.agent.id, running.turn.id, 'Bash', {'command': 'touch x'}, 60)
    assert agent_sessions.get(running.owner, running.agent.id)['status'] == 'awaiting_permission'
    with pytest.raises(Forbidden):
        approvals.decide(viewer, asked['id'], True)
    with pytest.raises(Forbidden):  # Bob's level on Alice's worktree is `session`: he may not answer her session
        approvals.decide(running.users['bob'], asked['id'], True)
    repos.set_level(running.owner, running.worktree.id, 'prompt')
    assert approvals.decide(running.users['bob'], asked['id'], False)['outcome'] == 'Denied by Bob.'
    with pytest.raises(Exception, match='Already answered: Denied by Bob.'):
        approvals.decide(running.owner, asked['id'], True)
    assert agent_sessions.get(running.owner, running.agent.id)['status'] == 'running'


def test_a_request_shows_the_creators_secret_values_as_stars(settings, running):
    """Everyone who watches the session sees the request: the secrets the run got (a Global variable, a Session
    variable this session opted into) are hidden, as in the transcript."""
    user_secrets.set_env(running.owner, 'DEPLOY_TOKEN', 'tok-alice-1234')
    user_secrets.set_env(running.owner, 'SESSION_TOKEN', 'tok-session-5678', 'session')
    user_secrets.set_session_env(running.owner, running.agent.id, ['SESSION_TOKEN'])
    command = 'curl -H "X-Token: tok-alice-1234" -H "X-S: tok-session-5678" https://deploy'
    asked = approvals.request(running.agent.id, running.turn.id, 'Bash', {'command': command}, 60)
    assert asked['input'] == {'command': 'curl -H "X-Token: ***" -H "X-S: ***" https://deploy'}
    shown = repr(approvals.for_session(running.users['bob'], running.agent.id))
    assert 'tok-alice-1234' not in shown and 'tok-session-5678' not in shown
    sent = {'command': 'curl -H "X-Token: tok-alice-1234" https://deploy'}
    allowed = approvals.decide(running.owner, asked['id'], True)
    assert approvals.answer(allowed, sent) == {'behavior': 'allow', 'updatedInput': sent}  # runs as the agent asked


@pytest.mark.parametrize('ending', ['finished', 'interrupted'])
def test_a_run_that_ends_cancels_what_it_asked(running, ending):
    """A request whose run ended (its process finished, or the app restarted under it) cannot stay answerable, and
    the next run's own request settles the session as usual."""
    stale = approvals.request(running.agent.id, running.turn.id, 'Bash', {'command': 'touch x'}, 60)
    if ending == 'finished':
        run_records.finish_turn(running.agent.id, running.turn.id, 'completed')
    else:
        run_records.fail_interrupted(running.agent.id, 'The app restarted during the run.')
    [shown] = approvals.for_session(running.owner, running.agent.id)
    assert (shown['id'], shown['status'], shown['outcome']) == \
        (stale['id'], 'cancelled', 'Cancelled: the run ended first.')
    agent_sessions.prompt(running.owner, running.agent.id, 'again')
    _, turn, _, _ = run_records.claim_next_turn(running.agent.id)
    asked = approvals.request(running.agent.id, turn.id, 'Bash', {'command': 'touch y'}, 60)
    approvals.decide(running.owner, asked['id'], True)
    assert agent_sessions.get(running.owner, running.agent.id)['status'] == 'running'


# ---- real CLIs in the real app -------------------------------------------------------------------------------------

@pytest.fixture
def app(tmp_path: Path, git_repo: Path, instance_keys):
    """The app with the fake model as every CLI's provider; Alice owns the worktree, Bob may prompt her sessions,
    Vic is a viewer."""
    model = FakeModelServer().start()
    env = {'AGOR_AGENT_ENV_ANTHROPIC_BASE_URL': model.url, 'AGOR_AGENT_ENV_ANTHROPIC_API_KEY': 'test-key',
           'AGOR_AGENT_ENV_OPENAI_BASE_URL': f'{model.url}/v1', 'AGOR_AGENT_ENV_OPENAI_API_KEY': 'test-key',
           'AGOR_AGENT_MAX_RETRIES': '0', 'AGOR_APPROVAL_TIMEOUT_SECONDS': str(TIMEOUT)}
    try:
        with running_app(tmp_path / 'app', **env) as server:
            db.init(server.database_url)
            settings = load_settings(data_dir=str(server.data_dir))
            seeded = seed_board(settings, git_repo, bob=Role.member, vic=Role.viewer)
            repos.set_level(seeded.owner, seeded.worktree.id, 'prompt')
            yield SimpleNamespace(server=server, model=model, **vars(seeded),
                                  settings=Settings(data_dir=server.data_dir, mcp_url=f'{server.url}/mcp'))
    finally:
        model.stop()


async def board_page(app: SimpleNamespace, http: httpx.AsyncClient, name: str) -> WsPage:
    cookie = await asyncio.to_thread(login_cookie, app.server, app.users[name].id)
    return await WsPage(app.server, cookie).open(http, f'/b/{app.board.slug}')


def settled(app: SimpleNamespace, session_id: str, turns: int) -> bool:
    """The session has finished `turns` runs and is not running (a prompt still queued is not a finished turn: counting
    it let the second run's checks read its transcript before the run had written its tool result)."""
    with db.read() as session:
        agent = session.get(AgentSession, session_id)
        done = session.exec(select(SessionTurn).where(SessionTurn.session_id == session_id,
                                                      col(SessionTurn.status).in_(FINISHED))).all()
    return agent.status not in ('running', 'awaiting_permission', 'idle') and len(done) >= turns


async def until(condition: Callable[[], Any], what: str, timeout: float = 90) -> Any:
    deadline = time.monotonic() + timeout
    while not (found := await asyncio.to_thread(condition)):
        assert time.monotonic() < deadline, f'waited {timeout} s for {what}'
        await asyncio.sleep(0.2)
    return found


def pulsing(page: WsPage, card: str, reason: str) -> bool:
    """The board told this page to pulse the card, with the reason."""
    return any('setAttention' in code and card in code and reason in code for code in page.scripts)


def entries(app: SimpleNamespace, session_id: str, kind: str) -> list[dict[str, Any]]:
    return [e for e in agent_sessions.transcript(app.owner, session_id) if e['kind'] == kind]


@pytest.mark.parametrize('runtime', ['claude-code', 'codex'])
async def test_an_agent_comments_and_asks_for_attention_as_its_user(app, runtime):
    require_cli(runtime)
    async with httpx.AsyncClient(timeout=30) as http:
        bob = await board_page(app, http, 'bob')
        agent = await asyncio.to_thread(
            agent_sessions.create, app.owner, app.worktree.id, runtime,
            '[[call:post_comment {"text": "Tests pass; @Bob please review"}]]', model='fake-model')
        await until(lambda: settled(app, agent.id, 1), 'the first run')

        await bob.wait_for(lambda: bob.find(text='Alice’s agent'), timeout=20)  # the thread, as Bob's page shows it
        assert 'Tests pass;' in json.dumps(bob.elements, ensure_ascii=False)  # its body, @Bob as a mention
        with db.read() as session:
            comment = session.exec(select(Comment)).one()
            inbox = session.exec(select(Notification).where(Notification.user_id == app.users['bob'].id)).all()
        assert (comment.author_id, comment.agent_session_id, comment.target_id) == \
            (app.owner.id, agent.id, app.worktree.id)
        assert [n.title for n in inbox] == ['Alice’s agent mentioned you on Sprint']

        await asyncio.to_thread(agent_sessions.prompt, app.owner, agent.id,
                                '[[call:request_attention {"reason": "Need a decision on the schema"}]]')
        await until(lambda: settled(app, agent.id, 2), 'the second run')
        await bob.wait_for(lambda: pulsing(bob, app.worktree.id, 'Need a decision on the schema'), timeout=20)
        results = [entry['text'] for entry in entries(app, agent.id, 'tool_result')]
        assert any('"pulsing": true' in text for text in results), results
        await bob.close()


async def test_the_endpoint_refuses_requests_without_a_live_token(app):
    async with httpx.AsyncClient(timeout=30) as http:
        call = {'jsonrpc': '2.0', 'id': 1, 'method': 'tools/list', 'params': {}}
        headers = {'accept': 'application/json, text/event-stream'}
        missing = await http.post(f'{app.server.url}/mcp', json=call, headers=headers)
        assert missing.status_code == 401 and 'Not authenticated' in missing.json()['detail']

        agent = await asyncio.to_thread(agent_sessions.create, app.owner, app.worktree.id, 'claude-code')
        ended = agent_tokens.mint(app.settings, app.owner.id, agent.id, 'no-such-turn')
        expired = agent_tokens.mint(app.settings, app.owner.id, agent.id, 'no-such-turn',
                                    lifetime=timedelta(seconds=-1))
        for token, says in ((ended, 'has ended'), (expired, 'expired'), ('not-a-jwt', 'not valid')):
            refused = await http.post(f'{app.server.url}/mcp', json=call,
                                      headers={**headers, 'authorization': f'Bearer {token}'})
            assert refused.status_code == 401 and says in refused.json()['detail'], refused.text
            assert token not in refused.text


async def test_bob_allows_a_command_and_nobody_answers_the_next(app):
    """Claude Code in its asking mode: the request pulses Bob's card (not Vic's, a viewer), Bob sees it in the
    session panel and allows it, and the command runs; the next one nobody answers is denied after the timeout."""
    require_cli('claude-code')
    worktree = Path(app.worktree.path)
    async with httpx.AsyncClient(timeout=30) as http:
        bob, vic = await board_page(app, http, 'bob'), await board_page(app, http, 'vic')
        agent = await asyncio.to_thread(
            agent_sessions.create, app.owner, app.worktree.id, 'claude-code', '[[shell:touch allowed.txt]]',
            model='fake-model', permission_mode='default')
        asked = await until(lambda: pending(agent.id), 'the approval request')
        assert asked.tool == 'Bash' and asked.input['command'] == 'touch allowed.txt'
        await bob.wait_for(lambda: pulsing(bob, app.worktree.id, 'touch allowed.txt'), timeout=20)

        for page in (bob, vic):
            await page.fire(page.one(event='session_click'), 'session_click', {'id': agent.id})
        allow = await bob.wait_element(label='Allow', tag='q-btn')
        await vic.wait_for(lambda: vic.find(text='Waiting for someone who may prompt this session.'))
        assert not vic.find(label='Allow', tag='q-btn') and not pulsing(vic, app.worktree.id, 'touch allowed.txt')
        await bob.fire(allow, 'click')
        await until(lambda: settled(app, agent.id, 1), 'the allowed run')
        assert (worktree / 'allowed.txt').exists()
        assert approval_row(asked.id).decided_by == app.users['bob'].id
        await bob.wait_for(lambda: bob.find(text='Allowed by Bob.'))

        started = time.monotonic()
        await asyncio.to_thread(agent_sessions.prompt, app.owner, agent.id, '[[shell:touch denied.txt]]')
        second = await until(lambda: pending(agent.id), 'the second request')
        await until(lambda: settled(app, agent.id, 2), 'the denied run')
        assert time.monotonic() - started >= TIMEOUT
        assert not (worktree / 'denied.txt').exists()
        assert approval_row(second.id).status == 'expired'
        assert any('Denied: nobody answered in time.' in entry['text'] for entry in entries(app, agent.id,
                                                                                           'tool_result'))
        await bob.close()
        await vic.close()


def pending(session_id: str) -> Approval | None:
    with db.read() as session:
        return session.exec(select(Approval).where(Approval.session_id == session_id,
                                                   Approval.status == 'pending')).first()


def approval_row(approval_id: str) -> Approval:
    with db.read() as session:
        return session.get(Approval, approval_id)
