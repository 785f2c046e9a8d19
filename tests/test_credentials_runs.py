"""Sessions run with their creator's credentials, whoever prompts them: the real Claude Code CLI against the fake
model server (the key it sends, the env its shell tool sees), Session-scoped variables only where opted in, and in
strict mode the creator's Unix account, whose process env other accounts cannot read."""
from __future__ import annotations

import os
import pwd
import subprocess

from agor import agent_sessions, credentials, repos, run_records, user_secrets

from .conftest import require_cli
from .test_agent_accounts import IS_ROOT, STRICT_ACCOUNTS, needs_root, team  # noqa: F401 (team is a fixture)
from .test_sessions import settle, texts, wait_for

MODE = 'strict' if IS_ROOT else 'simple'


async def alice_and_bob(team, mode: str = MODE):  # noqa: F811
    """Alice and Bob each with a provider key and a GITHUB_TOKEN; Bob may prompt Alice's sessions."""
    seeded = await team(mode)
    alice, bob = seeded.owner, seeded.users['bob']
    for user in (alice, bob):
        who = user.name.lower()
        user_secrets.set_key(user, 'ANTHROPIC_API_KEY', f'sk-ant-{who}-key')
        user_secrets.set_env(user, 'GITHUB_TOKEN', f'ghp_{who}_token')
    repos.set_level(alice, seeded.worktree.id, 'prompt')
    return seeded, alice, bob


async def test_a_teammates_prompt_reaches_the_model_with_the_creators_key_and_env(team, fake_model):  # noqa: F811
    require_cli('claude-code')
    seeded, alice, bob = await alice_and_bob(team)
    credentials.configure({'ANTHROPIC_BASE_URL': fake_model.url})
    agent = agent_sessions.create(alice, seeded.worktree.id, 'claude-code', model='fake-model',
                                  permission_mode='bypass')
    agent_sessions.prompt(bob, agent.id, 'Run it [[shell:id -un; env]]')
    detail = await settle(agent.id, 'awaiting_input', 'failed', timeout=120)
    assert detail['status'] == 'awaiting_input', detail
    assert {seen.api_key for seen in fake_model.requests} == {'sk-ant-alice-key'}
    output = fake_model.requests[-1].tool_output  # what the shell tool printed, as the model got it
    expected_account = STRICT_ACCOUNTS['alice'] if MODE == 'strict' else None
    assert expected_account is None or output.splitlines()[0] == expected_account
    assert 'GITHUB_TOKEN=ghp_alice_token' in output and 'ghp_bob' not in output and 'sk-ant-bob' not in output
    shown = repr(agent_sessions.transcript(bob, agent.id))
    assert 'GITHUB_TOKEN=***' in shown and 'ghp_alice_token' not in shown and 'sk-ant-alice-key' not in shown


async def test_session_scoped_variables_reach_only_sessions_that_opted_in(team):  # noqa: F811
    seeded, alice, bob = await alice_and_bob(team)
    user_secrets.set_env(alice, 'DEPLOY_TOKEN', 'deploy-value', 'session')
    agent = agent_sessions.create(alice, seeded.worktree.id, 'shell', 'echo "deploy=${DEPLOY_TOKEN:-unset}"')
    await settle(agent.id, 'completed')
    other = agent_sessions.create(alice, seeded.worktree.id, 'shell')
    user_secrets.set_session_env(alice, agent.id, ['DEPLOY_TOKEN'])
    agent_sessions.prompt(bob, agent.id, 'echo "deploy=${DEPLOY_TOKEN:-unset} by=$GITHUB_TOKEN"')
    await settle(agent.id, 'completed')
    agent_sessions.prompt(alice, other.id, 'echo "deploy=${DEPLOY_TOKEN:-unset}"')
    await settle(other.id, 'completed')
    assert ''.join(texts(alice, agent.id, 'assistant')).split() == ['deploy=unset', 'deploy=***', 'by=***']
    assert ''.join(texts(alice, other.id, 'assistant')).split() == ['deploy=unset']


@needs_root
async def test_in_strict_mode_a_run_is_the_creators_account_whose_env_others_cannot_read(team):  # noqa: F811
    seeded, alice, bob = await alice_and_bob(team, 'strict')
    agent = agent_sessions.create(alice, seeded.worktree.id, 'shell')
    agent_sessions.prompt(bob, agent.id, 'id -un; echo started; sleep 30')
    await wait_for(lambda: 'started' in ''.join(texts(alice, agent.id, 'assistant')))
    pid = run_records.running_sessions()[0].pid
    environ = f'/proc/{pid}/environ'
    as_bob = subprocess.run(['cat', environ], user=STRICT_ACCOUNTS['bob'], capture_output=True, text=True)
    assert as_bob.returncode != 0 and 'Permission denied' in as_bob.stderr
    with open(environ, 'rb') as handle:  # the app (root) put Alice's values there, for her account only
        assert b'GITHUB_TOKEN=ghp_alice_token' in handle.read()
    assert os.stat(f'/proc/{pid}').st_uid == pwd.getpwnam(STRICT_ACCOUNTS['alice']).pw_uid
    agent_sessions.stop(alice, agent.id)
    await settle(agent.id, 'stopped')
    assert ''.join(texts(alice, agent.id, 'assistant')).split()[0] == STRICT_ACCOUNTS['alice']
