"""Users' secrets at rest and what launching a process makes of them: the sealed box (round trip, associated data,
wrong master secret, rotation), the rules for names and values, write-only listing, the merge order, the provider
key check before anything is queued, and the creator's values kept out of stored transcripts and errors."""
from __future__ import annotations

import stat
import subprocess
import sys

import pytest
from sqlmodel import select

from agor import agent_sessions, credentials, db, repos, rotate_master_secret, user_secrets
from agor.config import load_settings
from agor.errors import Forbidden, InvalidInput, NotFound
from agor.models import Role, SecretCheck, SessionTurn, UserSecret
from agor.secret_box import SecretBox, UnreadableSecret, WrongMasterSecret
from agor.session_worker import SessionWorkers

from .app_server import ROOT, clean_env, running_app
from .conftest import agent_account, seed_board
from .test_sessions import settle, texts

SECRET_A = 'a' * 40
SECRET_B = 'b' * 40


@pytest.fixture
def team(settings, git_repo):
    return seed_board(settings, git_repo, bob=Role.member, dan=Role.viewer)


def stored(user_id: str, name: str) -> UserSecret:
    with db.read() as session:
        return session.exec(select(UserSecret).where(UserSecret.user_id == user_id, UserSecret.name == name)).one()


def opened(user, session_id: str | None = None) -> dict[str, str]:
    with db.read() as session:
        return user_secrets.opened_env(session, user.id, session_id).env


# ---- the box ---------------------------------------------------------------------------------------------------------

def test_a_sealed_value_opens_only_as_its_owner_purpose_and_name():
    box = SecretBox(SECRET_A)
    sealed = box.seal('alice-id', 'env', 'GITHUB_TOKEN', 'ghp_value')
    assert 'ghp_value' not in sealed and sealed != box.seal('alice-id', 'env', 'GITHUB_TOKEN', 'ghp_value')
    assert box.open('alice-id', 'env', 'GITHUB_TOKEN', sealed) == 'ghp_value'
    for owner, purpose, name in [('bob-id', 'env', 'GITHUB_TOKEN'), ('alice-id', 'key', 'GITHUB_TOKEN'),
                                 ('alice-id', 'env', 'GH_TOKEN')]:
        with pytest.raises(UnreadableSecret) as refused:
            box.open(owner, purpose, name, sealed)
        assert refused.value.message == f'The stored value of {name} cannot be read (it was altered or moved); ' \
            'replace it.'
    with pytest.raises(UnreadableSecret):  # another version's value is not read as this one's
        box.open('alice-id', 'env', 'GITHUB_TOKEN', 'v2:' + sealed.removeprefix('v1:'))
    assert box.open('o', 'env', 'EMPTY', box.seal('o', 'env', 'EMPTY', '')) == ''  # the shortest sealed value
    with pytest.raises(UnreadableSecret):
        SecretBox(SECRET_B).open('alice-id', 'env', 'GITHUB_TOKEN', sealed)
    with pytest.raises(WrongMasterSecret, match='at least 32 characters'):
        SecretBox('x' * 31)
    SecretBox('x' * 32)  # exactly the minimum


def test_a_value_sealed_by_an_earlier_version_still_opens():
    """The key derivation and the associated data are part of what is stored: a value sealed when this was written
    (same master secret) opens after any upgrade."""
    earlier = 'v1:bMUrMHWXYKcCs9-frnuOEkc-sAiIQQAi7pjNR5TlrAKx7qqTQA=='
    assert SecretBox(SECRET_A).open('alice-id', 'env', 'GITHUB_TOKEN', earlier) == 'ghp_value'


def test_a_row_copied_to_another_user_does_not_open(team):
    alice, bob = team.owner, team.users['bob']
    user_secrets.set_env(alice, 'GITHUB_TOKEN', 'ghp_alice')
    user_secrets.set_env(bob, 'GITHUB_TOKEN', 'ghp_bob')
    with db.transaction() as session:
        bobs = session.exec(select(UserSecret).where(UserSecret.user_id == bob.id)).one()
        bobs.value = stored(alice.id, 'GITHUB_TOKEN').value  # what a database writer could do
    assert opened(alice) == {'GITHUB_TOKEN': 'ghp_alice'}
    with pytest.raises(UnreadableSecret):
        opened(bob)


def test_the_master_secret_file_is_made_once_and_private(settings):
    path = settings.data_dir / 'master_secret'
    assert stat.S_IMODE(path.stat().st_mode) == 0o600
    first = path.read_text()
    with db.read() as session:
        check = session.exec(select(SecretCheck)).all()
    user_secrets.init(settings)
    assert path.read_text() == first
    with db.read() as session:  # a restart neither replaces the check value nor adds one
        assert [row.value for row in session.exec(select(SecretCheck)).all()] == [row.value for row in check]


def test_a_wrong_master_secret_stops_the_start_with_what_to_do(settings, monkeypatch):
    monkeypatch.setenv('AGOR_MASTER_SECRET', SECRET_B)
    with pytest.raises(WrongMasterSecret, match=r'\(AGOR_MASTER_SECRET\) is not the one the stored secrets were'):
        user_secrets.init(load_settings())
    monkeypatch.delenv('AGOR_MASTER_SECRET')
    path = settings.data_dir / 'master_secret'
    path.write_text(SECRET_B)
    with pytest.raises(WrongMasterSecret) as refused:
        user_secrets.init(load_settings())
    assert str(refused.value) == (f'The master secret ({path}) is not the one the stored secrets were encrypted with. '
                                  'Start with the original one; to change it, use `python -m '
                                  'agor.rotate_master_secret` (docs/security.md).')


def test_the_app_refuses_to_start_with_a_wrong_master_secret(tmp_path):
    with running_app(tmp_path / 'app', AGOR_MASTER_SECRET=SECRET_A):
        pass
    with pytest.raises(RuntimeError) as failed:
        with running_app(tmp_path / 'app', AGOR_MASTER_SECRET=SECRET_B):
            pass
    assert 'Agor cannot start: The master secret (AGOR_MASTER_SECRET' in str(failed.value)
    assert 'Traceback' not in str(failed.value) and SECRET_B not in str(failed.value)


def rotate(data_dir, **env) -> subprocess.CompletedProcess:
    """The rotation command as an operator runs it (another process)."""
    return subprocess.run([sys.executable, '-m', 'agor.rotate_master_secret', '--data-dir', str(data_dir)], cwd=ROOT,
                          env=clean_env(**env), capture_output=True, text=True, timeout=60)


def rotate_here(data_dir, capsys) -> tuple[int, str, str]:
    """The rotation command's main in this process (exit code, stdout, stderr), so that mutation testing reaches the
    code it runs."""
    capsys.readouterr()
    code = rotate_master_secret.main(['--data-dir', str(data_dir)])
    out, err = capsys.readouterr()
    return code, out, err


def test_rotation_re_encrypts_every_value_and_the_old_secret_no_longer_opens_them(team, settings, capsys):
    alice, bob = team.owner, team.users['bob']
    user_secrets.set_env(alice, 'GITHUB_TOKEN', 'ghp_alice')
    user_secrets.set_key(bob, 'ANTHROPIC_API_KEY', 'sk-bob')
    path = settings.data_dir / 'master_secret'
    old_file = path.read_text()
    (settings.data_dir / 'master_secret.next.new').write_text('left by a rotation that crashed while writing')
    code, out, err = rotate_here(settings.data_dir, capsys)
    assert (code, out) == (0, f'Re-encrypted 2 secrets; the new master secret is in {path}.\n'), err
    new_file = path.read_text()
    assert new_file != old_file and stat.S_IMODE(path.stat().st_mode) == 0o600
    assert sorted(item.name for item in settings.data_dir.iterdir() if item.name.startswith('master_secret')) == \
        ['master_secret']
    user_secrets.init(settings)  # the new file matches the check value
    assert opened(alice) == {'GITHUB_TOKEN': 'ghp_alice'} and opened(bob) == {'ANTHROPIC_API_KEY': 'sk-bob'}
    with pytest.raises(UnreadableSecret):
        SecretBox(old_file).open(alice.id, 'env', 'GITHUB_TOKEN', stored(alice.id, 'GITHUB_TOKEN').value)


def test_rotation_changes_nothing_when_one_value_does_not_open(team, settings, capsys):
    alice, bob = team.owner, team.users['bob']
    user_secrets.set_env(alice, 'GITHUB_TOKEN', 'ghp_alice')
    user_secrets.set_env(bob, 'GITHUB_TOKEN', 'ghp_bob')
    with db.transaction() as session:
        session.exec(select(UserSecret).where(UserSecret.user_id == bob.id)).one().value = \
            stored(alice.id, 'GITHUB_TOKEN').value
    before = stored(alice.id, 'GITHUB_TOKEN').value
    secret = (settings.data_dir / 'master_secret').read_text()
    code, _, err = rotate_here(settings.data_dir, capsys)
    assert code == 1 and err == ('Cannot rotate, nothing was changed: The stored value of GITHUB_TOKEN cannot be read '
                                 '(it was altered or moved); replace it.\n')
    assert stored(alice.id, 'GITHUB_TOKEN').value == before
    assert (settings.data_dir / 'master_secret').read_text() == secret
    assert not (settings.data_dir / 'master_secret.next').exists()


def test_rotation_refuses_a_master_secret_that_is_not_the_one(team, settings, capsys):
    user_secrets.set_env(team.owner, 'GITHUB_TOKEN', 'ghp_alice')
    path = settings.data_dir / 'master_secret'
    path.write_text(SECRET_B)  # replaced by mistake
    code, _, err = rotate_here(settings.data_dir, capsys)
    assert code == 1 and err == ('Cannot rotate, nothing was changed: The check value does not open with the '
                                 'current master secret.\n')
    assert path.read_text() == SECRET_B and not (settings.data_dir / 'master_secret.next').exists()


def test_the_rotation_command_from_the_environment_needs_the_new_secret(team, settings, monkeypatch):
    secret = (settings.data_dir / 'master_secret').read_text()
    user_secrets.set_env(team.owner, 'GITHUB_TOKEN', 'ghp_alice')
    done = rotate(settings.data_dir, AGOR_MASTER_SECRET=secret)
    assert done.returncode == 2 and 'set AGOR_NEW_MASTER_SECRET' in done.stderr
    done = rotate(settings.data_dir, AGOR_MASTER_SECRET=secret, AGOR_NEW_MASTER_SECRET=SECRET_B)
    assert done.returncode == 0, done.stderr
    monkeypatch.setenv('AGOR_MASTER_SECRET', SECRET_B)
    user_secrets.init(load_settings())
    assert opened(team.owner) == {'GITHUB_TOKEN': 'ghp_alice'}


# ---- names, values, listing ----------------------------------------------------------------------------------------

@pytest.mark.parametrize('name, reason', [
    ('PATH', 'it changes which programs or libraries a process loads'),
    ('LD_PRELOAD', 'it changes which programs or libraries a process loads'),
    ('NODE_OPTIONS', 'it injects code into every Node program'),
    ('HOME', 'the app sets it to the Unix account'),
    ('BASH_ENV', 'bash runs that file at start'),
    ('GIT_SSH_COMMAND', 'git reads configuration and commands'),
    ('GIT_CONFIG_COUNT', 'git reads configuration and commands'),
    ('AGOR_MASTER_SECRET', 'the app sets AGOR_* variables itself'),
    ('CLAUDE_CONFIG_DIR', 'where Claude Code reads its config and credentials'),
])
def test_names_that_would_hijack_a_process_are_refused_with_the_reason(team, name, reason):
    with pytest.raises(InvalidInput) as refused:
        user_secrets.set_env(team.owner, name, 'x')
    assert refused.value.message.startswith(f'{name} cannot be set here: ') and reason in refused.value.message
    assert user_secrets.list_env(team.owner) == []


@pytest.mark.parametrize('name', ['github_token', '1TOKEN', 'MY-TOKEN', '', 'A' * 129, None])
def test_names_are_capitals_digits_and_underscores(team, name):
    with pytest.raises(InvalidInput) as refused:
        user_secrets.set_env(team.owner, name, 'x')
    assert refused.value.message == ('A variable name has only capital letters, digits and _, and does not start with '
                                     'a digit (e.g. GITHUB_TOKEN).')


def test_a_name_may_have_128_characters(team):
    user_secrets.set_env(team.owner, 'A' * 128, 'x')
    assert opened(team.owner) == {'A' * 128: 'x'}


def test_values_are_at_most_10_kb_and_not_empty(team):
    user_secrets.set_env(team.owner, 'BIG', 'x' * 10 * 1024)
    with pytest.raises(InvalidInput, match='^A value is limited to 10 KB.$'):
        user_secrets.set_env(team.owner, 'BIG', 'x' * (10 * 1024 + 1))
    with pytest.raises(InvalidInput, match='^Enter a value.$'):
        user_secrets.set_env(team.owner, 'EMPTY', '')
    with pytest.raises(InvalidInput, match='^Enter a value.$'):  # a new variable's scope alone
        user_secrets.set_env(team.owner, 'EMPTY', None, 'session')
    with pytest.raises(InvalidInput, match='^Paste the key first.$'):
        user_secrets.set_key(team.owner, 'OPENAI_API_KEY', None)
    assert opened(team.owner) == {'BIG': 'x' * 10 * 1024}


def test_values_are_write_only_and_each_user_manages_their_own(team):
    alice, bob, dan = team.owner, team.users['bob'], team.users['dan']
    user_secrets.set_env(alice, 'GITHUB_TOKEN', 'ghp_first')
    user_secrets.set_env(alice, 'GITHUB_TOKEN', 'ghp_second', 'session')
    user_secrets.set_env(alice, 'GITHUB_TOKEN', None, 'global')  # the scope alone
    user_secrets.set_key(alice, 'ANTHROPIC_API_KEY', 'sk-alice')
    listed = user_secrets.list_env(alice) + user_secrets.list_keys(alice)
    assert [(item['name'], item['scope']) for item in listed] == [('GITHUB_TOKEN', 'global'),
                                                                  ('ANTHROPIC_API_KEY', 'global')]
    assert 'ghp_' not in repr(listed) and 'sk-alice' not in repr(listed)
    assert all(set(item) == {'name', 'scope', 'updated_at'} for item in listed)  # and when each was last set
    assert opened(alice) == {'GITHUB_TOKEN': 'ghp_second', 'ANTHROPIC_API_KEY': 'sk-alice'}
    assert user_secrets.list_env(bob) == [] and opened(bob) == {}
    user_secrets.delete_env(alice, 'GITHUB_TOKEN')
    assert opened(alice) == {'ANTHROPIC_API_KEY': 'sk-alice'}
    with pytest.raises(Forbidden, match=r'^Your role \(viewer\) cannot store secrets; it needs member or higher.$'):
        user_secrets.set_env(dan, 'GITHUB_TOKEN', 'x')  # a viewer runs nothing


def test_the_listing_is_by_name_and_a_key_and_a_variable_of_one_name_are_two(team):
    alice = team.owner
    for name in ('ZED', 'ALPHA', 'MID'):
        user_secrets.set_env(alice, name, f'{name.lower()}-value')
    user_secrets.set_env(alice, 'MID', None, 'session')
    user_secrets.set_env(alice, 'MID', 'mid-second')  # a replaced value keeps its scope
    assert [(item['name'], item['scope']) for item in user_secrets.list_env(alice)] == \
        [('ALPHA', 'global'), ('MID', 'session'), ('ZED', 'global')]
    user_secrets.set_key(alice, 'OPENAI_API_KEY', 'sk-key')
    user_secrets.set_env(alice, 'OPENAI_API_KEY', 'sk-variable')
    assert [item['name'] for item in user_secrets.list_keys(alice)] == ['OPENAI_API_KEY']
    user_secrets.delete_env(alice, 'OPENAI_API_KEY')
    assert opened(alice)['OPENAI_API_KEY'] == 'sk-key' and user_secrets.list_keys(alice)[0]['name'] == 'OPENAI_API_KEY'


# ---- the merge -------------------------------------------------------------------------------------------------------

def test_the_merge_order_is_instance_then_global_then_opted_session_vars_then_keys(team):
    alice, bob = team.owner, team.users['bob']
    credentials.configure({'SHARED': 'instance', 'ONLY_INSTANCE': 'i', 'ANTHROPIC_API_KEY': 'sk-instance'})
    user_secrets.set_env(alice, 'SHARED', 'global')
    user_secrets.set_env(alice, 'OVERRIDE', 'global')
    user_secrets.set_env(alice, 'SESSION_ONLY', 'in-session', 'session')
    agent = agent_sessions.create(alice, team.worktree.id, 'shell')
    account = agent_account()
    env = credentials.merged_env(alice, account, session_id=agent.id).env
    assert (env['SHARED'], env['ONLY_INSTANCE'], env['ANTHROPIC_API_KEY']) == ('global', 'i', 'sk-instance')
    assert 'SESSION_ONLY' not in env
    user_secrets.set_session_env(alice, agent.id, ['SESSION_ONLY'])
    with pytest.raises(Forbidden, match="Only the session's creator"):
        user_secrets.set_session_env(bob, agent.id, [])
    user_secrets.set_key(alice, 'ANTHROPIC_API_KEY', 'sk-alice')
    launch = credentials.merged_env(alice, account, session_id=agent.id)
    assert launch.env['SESSION_ONLY'] == 'in-session' and launch.env['ANTHROPIC_API_KEY'] == 'sk-alice'
    assert sorted(launch.secrets) == ['global', 'global', 'in-session', 'sk-alice']
    assert user_secrets.session_env(alice, agent.id) == {'available': ['SESSION_ONLY'], 'selected': ['SESSION_ONLY']}
    assert 'SESSION_ONLY' not in credentials.merged_env(alice, account).env  # a terminal: Global variables only
    assert credentials.merged_env(bob, account).env.get('SHARED') == 'instance'


def test_a_missing_provider_key_is_named_before_anything_is_queued(team, settings):
    alice, bob = team.owner, team.users['bob']
    with pytest.raises(InvalidInput) as refused:
        agent_sessions.create(alice, team.worktree.id, 'claude-code', 'hello')
    assert refused.value.message == ('Claude Code needs an API key: add ANTHROPIC_API_KEY under Settings → Agentic '
                                     'Tools → API Keys.')
    user_secrets.set_key(alice, 'ANTHROPIC_API_KEY', 'sk-alice')
    agent = agent_sessions.create(alice, team.worktree.id, 'claude-code', 'hello')
    user_secrets.delete_key(alice, 'ANTHROPIC_API_KEY')
    user_secrets.set_key(bob, 'ANTHROPIC_API_KEY', 'sk-bob')  # the prompter's key does not count
    repos.set_level(alice, team.worktree.id, 'prompt')
    with pytest.raises(InvalidInput) as refused:
        agent_sessions.prompt(bob, agent.id, 'again')
    assert refused.value.message == ('Claude Code runs as Alice, who has no API key for it: Alice adds '
                                     'ANTHROPIC_API_KEY under Settings → Agentic Tools → API Keys.')
    with db.read() as session:
        assert len(session.exec(select(SessionTurn).where(SessionTurn.session_id == agent.id)).all()) == 1
    login = settings.data_dir / 'agent-homes' / alice.id / 'claude' / '.credentials.json'
    login.parent.mkdir(parents=True)
    login.write_text('{}')  # Alice logged the CLI in with its own login
    credentials.configure({}, settings.data_dir / 'agent-homes')
    agent_sessions.prompt(bob, agent.id, 'again')
    credentials.configure({'ANTHROPIC_API_KEY': 'sk-instance'})  # the operator's key serves everyone
    agent_sessions.prompt(bob, agent.id, 'and again')


# ---- redaction -------------------------------------------------------------------------------------------------------

@pytest.fixture
async def workers(settings):
    running = SessionWorkers(settings)
    await running.start()
    yield running
    await running.stop_all()


async def test_the_creators_values_are_redacted_from_the_stored_transcript(team, workers):
    alice = team.owner
    user_secrets.set_env(alice, 'GITHUB_TOKEN', 'ghp_alice_secret_value')
    agent = agent_sessions.create(alice, team.worktree.id, 'shell',
                                  'echo "token=$GITHUB_TOKEN"; printf %s "$GITHUB_TOKEN" | wc -c')
    await settle(agent.id, 'completed')
    out = ''.join(texts(alice, agent.id, 'assistant'))
    assert 'token=***' in out and '22' in out and 'ghp_alice' not in out


async def test_the_creators_values_are_redacted_from_run_errors(team, workers, tmp_path, monkeypatch):
    from agor.runtimes import cli_process
    script = tmp_path / 'leaky-cli'
    script.write_text('#!/bin/sh\necho "bad key: $ANTHROPIC_API_KEY" >&2\nexit 1\n')
    script.chmod(0o755)
    monkeypatch.setattr(cli_process, 'find_binary', lambda runtime, cli_dir: str(script))
    user_secrets.set_key(team.owner, 'ANTHROPIC_API_KEY', 'sk-ant-leaked-value')
    agent = agent_sessions.create(team.owner, team.worktree.id, 'claude-code', 'hello')
    detail = await settle(agent.id, 'failed')
    assert detail['error'] == 'bad key: ***'
    [error] = [e for e in agent_sessions.transcript(team.owner, agent.id) if e['kind'] == 'error']
    assert 'sk-ant-leaked-value' not in repr(error) and error['text'] == 'bad key: ***'


def test_what_else_is_refused(team):
    alice, dan = team.owner, team.users['dan']
    with pytest.raises(InvalidInput, match='^A value cannot contain a NUL character.$'):
        user_secrets.set_env(alice, 'TOKEN', 'a\0b')
    with pytest.raises(InvalidInput, match='^Choose the scope Global or Session.$'):
        user_secrets.set_env(alice, 'TOKEN', 'x', 'repo')
    with pytest.raises(NotFound, match='^You have no variable TOKEN.$'):
        user_secrets.delete_env(alice, 'TOKEN')
    with pytest.raises(NotFound, match='^You have no key OPENAI_API_KEY.$'):
        user_secrets.delete_key(alice, 'OPENAI_API_KEY')
    with pytest.raises(NotFound, match=r"^You have no variable \['TOKEN'\].$"):  # not a name: nothing to look up
        user_secrets.delete_env(alice, ['TOKEN'])
    user_secrets.set_env(alice, 'TOKEN', 'x')
    with pytest.raises(Forbidden, match=r'^Your role \(viewer\) cannot store secrets; it needs member or higher.$'):
        user_secrets.delete_env(dan, 'TOKEN')
    agent = agent_sessions.create(alice, team.worktree.id, 'shell')
    with pytest.raises(InvalidInput, match='You have no Session-scoped variable TOKEN'):
        user_secrets.set_session_env(alice, agent.id, ['TOKEN'])  # it is Global
    for names in ('TOKEN', [1]):
        with pytest.raises(InvalidInput, match='^Choose variables by name.$'):
            user_secrets.set_session_env(alice, agent.id, names)
    assert opened(alice) == {'TOKEN': 'x'} and user_secrets.session_env(alice, agent.id)['selected'] == []
    for name in ('ZED', 'ALPHA', 'MID'):
        user_secrets.set_env(alice, name, 'v', 'session')
    user_secrets.set_session_env(alice, agent.id, ['MID', 'ZED'])
    assert user_secrets.session_env(alice, agent.id) == {'available': ['ALPHA', 'MID', 'ZED'],
                                                         'selected': ['MID', 'ZED']}


def test_a_session_offers_and_takes_only_its_creators_session_variables(team):
    alice, bob, dan = team.owner, team.users['bob'], team.users['dan']
    for name in ('ALPHA', 'MID'):
        user_secrets.set_env(alice, name, 'v', 'session')
    user_secrets.set_env(bob, 'BOBS', 'v', 'session')
    agent = agent_sessions.create(alice, team.worktree.id, 'shell')
    other = agent_sessions.create(alice, team.worktree.id, 'shell')
    assert user_secrets.session_env(alice, agent.id) == {'available': ['ALPHA', 'MID'], 'selected': []}
    with pytest.raises(InvalidInput, match='^You have no Session-scoped variable BOBS, NOPE.$'):
        user_secrets.set_session_env(alice, agent.id, ['NOPE', 'BOBS', 'ALPHA'])
    user_secrets.set_session_env(alice, other.id, ['ALPHA'])
    user_secrets.set_session_env(alice, agent.id, ['ALPHA', 'MID'])
    user_secrets.set_session_env(alice, agent.id, ['MID'])  # a new choice replaces the last one, of this session only
    assert user_secrets.session_env(alice, agent.id)['selected'] == ['MID']
    assert user_secrets.session_env(alice, other.id)['selected'] == ['ALPHA']
    with pytest.raises(Forbidden, match="^Only the session's creator chooses its variables: they are the creator's.$"):
        user_secrets.session_env(bob, agent.id)
    with pytest.raises(Forbidden, match=r'^Your role \(viewer\) cannot choose session variables; it needs member or '
                                        'higher.$'):
        user_secrets.session_env(dan, agent.id)
    with pytest.raises(NotFound, match='^That session no longer exists.$'):
        user_secrets.set_session_env(alice, 'no-such-session', [])


def test_a_provider_key_kept_as_a_session_variable_counts_where_the_session_opted_in(team):
    alice = team.owner
    user_secrets.set_env(alice, 'ANTHROPIC_API_KEY', 'sk-alice', 'session')
    agent = agent_sessions.create(alice, team.worktree.id, 'claude-code')
    with pytest.raises(InvalidInput, match='needs an API key'):
        agent_sessions.prompt(alice, agent.id, 'hello')
    user_secrets.set_session_env(alice, agent.id, ['ANTHROPIC_API_KEY'])
    agent_sessions.prompt(alice, agent.id, 'hello')


def test_redaction_hides_values_of_four_characters_or_more_longest_first():
    redact = user_secrets.redactor(['abc', 'abcd', 'secret', 'secret-long'])
    assert redact('abc abcd secret secret-long') == 'abc *** *** ***'
    for nothing in ([], ['abc']):
        assert user_secrets.redactor(nothing)('a text') == 'a text'
    assert user_secrets.redact_data({'input': {'command': ['echo secret']}, 'n': 1}, redact) == \
        {'input': {'command': ['echo ***']}, 'n': 1}


async def test_a_key_deleted_after_the_prompt_was_queued_fails_the_run_saying_so(team, settings):
    user_secrets.set_key(team.owner, 'ANTHROPIC_API_KEY', 'sk-alice')
    agent = agent_sessions.create(team.owner, team.worktree.id, 'claude-code', 'hello')
    user_secrets.delete_key(team.owner, 'ANTHROPIC_API_KEY')
    running = SessionWorkers(settings)
    await running.start()  # serves the queue it finds
    try:
        detail = await settle(agent.id, 'failed')
    finally:
        await running.stop_all()
    assert detail['error'] == ('Claude Code needs an API key: add ANTHROPIC_API_KEY under Settings → Agentic Tools → '
                               'API Keys.')
