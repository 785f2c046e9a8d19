"""Agents inside their Unix boundary: a session runs as the account `unix_user_mode` gives its creator, cannot read
the data dir's secrets (locked at start-up, before any terminal), can work in its worktree, and starts from the env
allowlist. As root (CI) every mode is tried for real; the real Claude Code CLI runs as the executor too."""
from __future__ import annotations

import asyncio
import dataclasses
import os
import pwd
import subprocess
from pathlib import Path

import pytest

from agor import agent_sessions, auth, credentials, db, unix_accounts, user_secrets
from agor.config import load_settings, session_secret
from agor.models import Role
from agor.runtimes import cli_process
from agor.session_worker import SessionWorkers

from .app_server import running_app
from .conftest import EXECUTOR, PASSWORD, ensure_account, require_cli, seed_board
from .test_pages import log_in
from .test_sessions import settle, texts
from .test_terminals import LEAKY_ENV

IS_ROOT = os.geteuid() == 0
STRICT_ACCOUNTS = {'alice': 'agor-t-alice', 'bob': 'agor-t-bob'}
needs_root = pytest.mark.skipif(not IS_ROOT, reason='creating Unix accounts and switching to them needs root')


@pytest.fixture
async def team(monkeypatch, git_repo):
    """make(mode): the app's state as main.py leaves it at start-up in that mode (data dir prepared), Alice (owner),
    Bob (member) and Dan (viewer) on a board with worktree auth-fix, and session workers serving queues."""
    workers = []

    async def make(mode: str):
        monkeypatch.setenv('AGOR_UNIX_USER_MODE', mode)
        if mode == 'strict':
            for account in STRICT_ACCOUNTS.values():
                ensure_account(account)
            monkeypatch.setenv('AGOR_UNIX_ACCOUNTS', ','.join(f'{who}@example.com={account}'
                                                              for who, account in STRICT_ACCOUNTS.items()))
        settings = load_settings()
        db.init(settings.database_url)
        session_secret(settings.data_dir)
        user_secrets.init(settings)
        credentials.configure(settings.agent_env, settings.data_dir / unix_accounts.AGENT_HOMES)
        unix_accounts.prepare(settings)
        seeded = seed_board(settings, git_repo, bob=Role.member)
        workers.append(SessionWorkers(settings))
        await workers[-1].start()
        seeded.settings = settings
        return seeded
    yield make
    for r in workers:
        await r.stop_all()


async def shell(seeded, user, command: str, *statuses: str) -> str:
    agent = agent_sessions.create(user, seeded.worktree.id, 'shell', command)
    detail = await settle(agent.id, *(statuses or ('completed',)))
    return detail, ''.join(texts(user, agent.id, 'assistant'))


PROBE = ('id -un; cat {secret} 2>&1 | sed "s/^.*session_secret: //"; ls {data} 2>&1 | sed "s/^.*: //"; '
         'echo made > by-agent.txt && git status --short by-agent.txt; stat -c %U "$HOME" {home}')


@needs_root
@pytest.mark.parametrize('mode, account', [('insulated', EXECUTOR), ('strict', 'agor-t-alice')])
async def test_a_session_runs_as_its_account_and_cannot_read_the_secret(team, mode, account):
    seeded = await team(mode)
    data = seeded.settings.data_dir
    home = data / 'agent-homes' / seeded.owner.id
    _, out = await shell(seeded, seeded.owner, PROBE.format(secret=data / 'session_secret', data=data, home=home))
    assert out.split('\n')[:6] == [account, 'Permission denied', 'Permission denied', '?? by-agent.txt', account,
                                   account], out
    assert Path(seeded.worktree.path, 'by-agent.txt').owner() == account


@needs_root
async def test_strict_mode_runs_each_creator_as_themselves_and_refuses_the_unmapped(team):
    seeded = await team('strict')
    _, out = await shell(seeded, seeded.users['bob'], 'id -un')
    assert out.strip() == 'agor-t-bob'
    carol = seeded.users['alice']  # an owner, but unmapped once the mapping drops her
    seeded.settings.unix_accounts.pop('alice@example.com')
    detail, _ = await shell(seeded, carol, 'id -un', 'failed')
    assert 'Strict mode: your account (alice@example.com) has no Unix account yet' in detail['error']


@needs_root
async def test_simple_mode_as_root_runs_no_agent(team):
    seeded = await team('simple')
    detail, out = await shell(seeded, seeded.owner, 'id -un', 'failed')
    assert 'never run as root' in detail['error'] and out == ''


def test_the_env_allowlist_as_merged_for_a_user(settings, monkeypatch):
    """What credentials.merged_env gives an agent or terminal of Alice (no keys of her own) running as the app's own
    account: the allowed names and LC_* of the app's environment, the account's identity, the operator's variables,
    Alice; nothing else."""
    alice = auth.create_first_owner('alice@example.com', 'Alice', PASSWORD)
    monkeypatch.setattr(os, 'environ', {'PATH': '/usr/bin', 'LC_TIME': 'C.UTF-8', 'LC_': 'x', 'XLC_ALL': 'x',
                                        **LEAKY_ENV})
    monkeypatch.setattr(credentials, 'instance', {'GH_TOKEN': 'granted'})
    account = unix_accounts.current()
    launch = credentials.merged_env(alice, account)
    assert launch.env == {**unix_accounts.login_env(account), 'PATH': '/usr/bin', 'LC_TIME': 'C.UTF-8',
                          'GH_TOKEN': 'granted', 'AGOR_USER': 'Alice', 'AGOR_USER_EMAIL': 'alice@example.com'}


async def test_a_session_starts_from_the_env_allowlist(team, monkeypatch):
    for name, value in LEAKY_ENV.items():
        monkeypatch.setenv(name, value)
    monkeypatch.setenv('LC_TIME', 'C.UTF-8')
    monkeypatch.setenv('AGOR_AGENT_ENV_GH_TOKEN', 'granted-by-the-operator')
    seeded = await team('insulated' if IS_ROOT else 'simple')
    _, out = await shell(seeded, seeded.owner, 'env')
    env = dict(line.split('=', 1) for line in out.splitlines() if '=' in line)
    assert not set(env.values()) & set(LEAKY_ENV.values()) and not set(env) & set(LEAKY_ENV)
    assert env['LC_TIME'] == 'C.UTF-8' and env['GH_TOKEN'] == 'granted-by-the-operator'
    assert env['AGOR_USER'] == 'Alice' and env['HOME'] == pwd.getpwnam(env['USER']).pw_dir
    assert env['AGOR_USER_EMAIL'] == 'alice@example.com'
    # git in the checkout the app's account owns works for another account (root: the executor), and only then
    trusts = {'GIT_CONFIG_COUNT': '1', 'GIT_CONFIG_KEY_0': 'safe.directory', 'GIT_CONFIG_VALUE_0': '*'}
    assert {name: env.get(name) for name in trusts} == (trusts if IS_ROOT else dict.fromkeys(trusts))
    assert not any(name.startswith(('AGOR_DATA', 'AGOR_REPO', 'AGOR_EXECUTOR', 'PYTEST')) for name in env)


@needs_root
async def test_the_real_app_locks_the_data_dir_at_start_up_and_runs_sessions_as_the_executor(tmp_path, git_repo):
    """The real app (uvloop, scheduler) in insulated mode: before any terminal or session the executor cannot read
    the secret, the database or the listing; then a Shell session runs as the executor and cannot either."""
    with running_app(tmp_path / 'app', AGOR_UNIX_USER_MODE='insulated', AGOR_EXECUTOR_ACCOUNT=EXECUTOR) as server:
        data = server.data_dir
        for target in (data / 'session_secret', data / 'agor.db', data):
            done = subprocess.run(['head', '-c', '1', str(target)] if target.is_file() else ['ls', str(target)],
                                  capture_output=True, text=True, user=EXECUTOR)
            assert done.returncode != 0 and 'Permission denied' in done.stderr, target
        assert subprocess.run(['head', '-c', '1', str(data / 'session_secret')]).returncode == 0  # it is there
        db.init(server.database_url)
        seeded = seed_board(load_settings(data_dir=str(data)), git_repo)
        agent = agent_sessions.create(seeded.owner, seeded.worktree.id, 'shell', f'id -un; cat {data}/session_secret')
        await settle(agent.id, 'failed', timeout=60)  # the app's watchdog picks the queue up
        out = ''.join(texts(seeded.owner, agent.id, 'assistant')).split('\n')
        assert out[0] == EXECUTOR and out[1].endswith('Permission denied'), out


@needs_root
def test_a_data_dir_in_roots_home_is_made_passable_for_the_executor_and_nothing_more(tmp_path, monkeypatch):
    """The README's path as root: a clone in /root (0700). The executor gets search permission on the way to the
    worktrees (an ACL entry), so terminals and agents work out of the box; it still cannot list what it passes."""
    home = tmp_path / 'root-like'
    (home / 'project').mkdir(parents=True)
    home.chmod(0o700)
    monkeypatch.setenv('AGOR_UNIX_USER_MODE', 'insulated')
    monkeypatch.setenv('AGOR_EXECUTOR_ACCOUNT', EXECUTOR)
    settings = load_settings(data_dir=str(home / 'project' / 'data'))
    secret = settings.data_dir / 'session_secret'
    session_secret(settings.data_dir)
    unix_accounts.prepare(settings)
    as_executor = {'capture_output': True, 'text': True, 'user': EXECUTOR}
    assert subprocess.run(['test', '-x', str(settings.worktrees_dir)], **as_executor).returncode == 0
    assert 'Permission denied' in subprocess.run(['ls', str(home)], **as_executor).stderr
    assert 'Permission denied' in subprocess.run(['head', '-c1', str(secret)], **as_executor).stderr
    assert any(f'Let {EXECUTOR} pass through {home}' in note for note in unix_accounts.notes)


@needs_root
def test_as_root_without_a_mode_the_app_is_insulated_and_creates_its_executor(tmp_path, monkeypatch):
    name = 'agor-t-auto'
    subprocess.run(['userdel', '--remove', name], capture_output=True)
    monkeypatch.setenv('AGOR_EXECUTOR_ACCOUNT', name)
    settings = load_settings()
    assert (settings.unix_user_mode, settings.unix_user_mode_auto) == ('insulated', True)
    try:
        unix_accounts.prepare(settings)
        assert unix_accounts.lookup(name).home == f'/home/{name}'
        assert any('uses insulated mode' in note for note in unix_accounts.notes)
        assert any(f'Created the Unix account {name}' in note for note in unix_accounts.notes)
    finally:
        subprocess.run(['userdel', '--remove', name], capture_output=True)


@needs_root
async def test_claude_code_runs_as_the_executor(make_request, tmp_path):
    runtime = require_cli('claude-code')
    executor = unix_accounts.lookup(EXECUTOR)
    home = tmp_path / 'state'
    home.mkdir()
    os.chown(home, executor.uid, executor.gid)
    base = make_request('Run it [[shell:id -un]]', permission_mode='bypass', env={'HOME': executor.home})
    request = dataclasses.replace(base, home=home, account=executor)
    events = []
    outcome = await cli_process.run(runtime, request, events.append)
    assert outcome.status == 'completed', outcome
    assert [e.text.strip() for e in events if e.kind == 'tool_result'] == [EXECUTOR]
    assert (home / 'claude').owner() == EXECUTOR  # what the adapter wrote is the executor's


@needs_root
async def test_the_admin_page_says_the_app_chose_insulated_mode(user):
    await user.open('/')  # start-up has run (as root, without AGOR_UNIX_USER_MODE)
    await asyncio.to_thread(auth.create_first_owner, 'ada@example.com', 'Ada', PASSWORD)
    await log_in(user, 'ada@example.com')
    await user.open('/admin')
    await user.should_see('unix_user_mode: insulated', retries=30)
    await user.should_see(f'so it uses insulated mode: terminals and agents run as the executor account {EXECUTOR}',
                          retries=30)


@needs_root
async def test_an_agent_commits_but_cannot_change_what_the_apps_git_runs(team):
    """The app's own git runs as root in the repository: the executor may add commits, not config or hooks."""
    seeded = await team('insulated')
    common = Path(seeded.worktree.path).parent.parent.parent.parent / 'src' / 'shop' / '.git'
    attack = ('git config core.fsmonitor "touch /tmp/agor-pwned" 2>&1 | grep -c .; '
              f'mv {common}/config {common}/config.old 2>&1 | grep -c "not permitted"; '
              f'{{ echo "touch /tmp/agor-pwned" > {common}/hooks/post-checkout; }} 2>&1 | grep -c "Permission denied"; '
              'git -c user.name=A -c user.email=a@example.com commit -q --allow-empty -m by-agent && git log -1 --format=%s')
    _, out = await shell(seeded, seeded.owner, attack)
    assert out.split() == ['1', '1', '1', 'by-agent'], out
    assert 'fsmonitor' not in (common / 'config').read_text() and not (common / 'hooks' / 'post-checkout').exists()
