"""The `agor` CLI (agor/cli.py) as a user runs it: a real process against the real app on loopback, each command with
its table and its `--json` (parsed), errors as one line and exit status 1, `--help` everywhere."""
from __future__ import annotations

import json
import os
import stat
import subprocess
import sys
from pathlib import Path
from types import SimpleNamespace

import pytest

from agor import api_keys, db
from agor.config import load_settings
from agor.models import Role

from .app_server import ROOT, clean_env, running_app
from .conftest import seed_board


@pytest.fixture(scope='module')
def world(tmp_path_factory):
    """The app with Alice (owner), Bob (member) and Vic (viewer) on board Sprint (worktree auth-fix)."""
    tmp = tmp_path_factory.mktemp('cli')
    repo = tmp / 'src' / 'shop'
    repo.mkdir(parents=True)
    for args in (['init', '-q', '-b', 'main'], ['commit', '-q', '--allow-empty', '-m', 'start']):
        subprocess.run(['git', '-c', 'user.name=T', '-c', 'user.email=t@example.com', *args], cwd=repo, check=True)
    with pytest.MonkeyPatch.context() as env, running_app(tmp / 'app', AGOR_REPO_ROOTS=str(tmp)) as server:
        env.setenv('AGOR_REPO_ROOTS', str(tmp))
        db.init(server.database_url)
        settings = load_settings(data_dir=str(server.data_dir))
        seeded = seed_board(settings, repo, bob=Role.member, vic=Role.viewer)
        yield SimpleNamespace(server=server, settings=settings, tmp=tmp, **vars(seeded))


class Shell:
    """One person's shell: their own config dir (XDG_CONFIG_HOME) and the CLI run as a process."""

    def __init__(self, home: Path) -> None:
        self.home = home
        self.home.mkdir(parents=True, exist_ok=True)

    def run(self, *args: str, stdin: str = '', check: bool = True) -> subprocess.CompletedProcess:
        result = subprocess.run([sys.executable, '-m', 'agor.cli', *args], check=False, cwd=ROOT, input=stdin,
                                text=True, capture_output=True, timeout=120,
                                env=clean_env(XDG_CONFIG_HOME=str(self.home), HOME=str(self.home), PYTHONPATH=str(ROOT),
                                              AGOR_URL='', AGOR_API_KEY=''))
        assert 'Traceback' not in result.stderr, result.stderr
        if check:
            assert result.returncode == 0, result.stderr
        return result

    def json(self, *args: str) -> object:
        return json.loads(self.run(*args, '--json').stdout)

    def fails(self, *args: str, message: str, stdin: str = '') -> None:
        result = self.run(*args, stdin=stdin, check=False)
        assert result.returncode == 1, (result.stdout, result.stderr)
        assert result.stderr.strip().splitlines() == [f'agor: {message}'], result.stderr


def logged_in(world, who: str, name: str | None = None) -> Shell:
    shell = Shell(world.tmp / 'homes' / (name or who))
    _, key = api_keys.create(world.settings, world.users[who], f'cli {who}')
    shell.run('login', world.server.url, stdin=key + '\n')
    return shell


def test_login_checks_the_key_and_keeps_it_in_a_private_config_file(world):
    shell = Shell(world.tmp / 'homes' / 'login')
    _, key = api_keys.create(world.settings, world.owner, 'cli')
    result = shell.run('login', world.server.url + '/', stdin=key + '\n')
    assert result.stdout.startswith('Logged in to ' + world.server.url + ' as Alice <alice@example.com> (owner)')
    config = shell.home / 'agor' / 'config.json'
    assert json.loads(config.read_text()) == {'url': world.server.url, 'key': key}
    assert stat.S_IMODE(config.stat().st_mode) == 0o600
    assert key not in result.stdout + result.stderr
    assert shell.json('boards')[0]['slug'] == 'sprint'

    other = Shell(world.tmp / 'homes' / 'bad-login')
    forged = 'agor_00000000_' + 'x' * 43
    other.fails('login', world.server.url, stdin=forged + '\n', message='Unknown API key.')
    assert not (other.home / 'agor' / 'config.json').exists()
    other.fails('login', 'ftp://example.com', stdin=key, message="'ftp://example.com' is not an http:// or https:// "
                                                                 'address of an Agor app.')
    other.fails('boards', message='not logged in: run `agor login URL` (or set AGOR_URL and AGOR_API_KEY).')


def test_boards_worktrees_and_worktree_create_as_tables_and_json(world):
    bob = logged_in(world, 'bob')
    table = bob.run('boards').stdout.splitlines()
    assert table[0].split() == ['BOARD', 'NAME', 'CARDS', 'PRIVATE'] and table[1].split() == ['sprint', 'Sprint', '1',
                                                                                              'no']
    assert [w['name'] for w in bob.json('worktrees', '--board', 'sprint')] == ['auth-fix']
    made = bob.json('worktree', 'create', 'cli-work', '--repo', 'shop', '--board', 'sprint')
    assert (made['name'], made['branch'], made['board_id']) == ('cli-work', 'cli-work', world.board.id)
    listed = bob.run('worktrees', '--board', 'sprint').stdout
    assert 'cli-work' in listed and 'auth-fix' in listed and listed.split()[:5] == ['ID', 'REPO', 'NAME', 'BRANCH',
                                                                                   'YOU']
    bob.fails('worktree', 'create', 'cli-work', '--repo', 'shop', message='shop already has a worktree named '
                                                                            'cli-work.')
    bob.fails('worktrees', '--board', 'nope', message="No board 'nope'.")


def test_session_start_follow_prompt_and_stop(world):
    bob = logged_in(world, 'bob')
    result = bob.run('session', 'start', '--worktree', 'auth-fix', '--agent', 'shell', 'echo hello-from-cli',
                     '--follow')
    assert '> echo hello-from-cli' in result.stdout and 'hello-from-cli\n' in result.stdout.split('> ', 2)[1]
    session_id = bob.json('session', 'start', '--worktree', 'auth-fix', '--agent', 'shell', 'echo quiet')['id']

    failed = bob.run('session', 'prompt', session_id, 'echo before-failing; exit 3', '--follow', check=False)
    assert failed.returncode == 1 and 'before-failing' in failed.stdout
    assert 'quiet' not in failed.stdout  # only what followed the prompt
    assert failed.stderr.strip().splitlines()[-1].startswith('agor: the session failed')

    events = [json.loads(line) for line in bob.run('session', 'prompt', session_id, 'echo again', '--follow',
                                                   '--json').stdout.splitlines()]
    assert events[-1]['event'] == 'session' and events[-1]['data']['status'] == 'completed'
    assert 'again\n' in [e['data']['text'] for e in events if e['event'] == 'entry']

    assert bob.run('session', 'prompt', session_id, 'sleep 30').stdout.startswith('Queued')
    stopped = bob.json('session', 'stop', session_id)
    assert stopped in ({'stopped': True}, {'stopped': False})  # running already, or still waiting (then dropped)
    bob.fails('session', 'stop', 'no-such-session', message='That session no longer exists.')
    bob.fails('session', 'start', '--worktree', 'auth-fix', '--agent', 'nope', 'hi',
              message="Unknown agent runtime 'nope'; choose one of claude-code, codex, gemini, opencode, shell")


def test_comment_add_reaches_the_mentioned_persons_inbox(world):
    alice, bob = logged_in(world, 'alice'), logged_in(world, 'bob', 'bob-inbox')
    thread = alice.json('comment', 'add', '--worktree', 'auth-fix', 'Ship it @Bob')
    assert thread['target_label'] == 'auth-fix' and thread['comments'][0]['author'] == 'Alice'
    assert alice.run('comment', 'add', '--worktree', 'auth-fix', 'again').stdout.startswith('Commented on auth-fix')
    inbox = bob.json('inbox', '--unread')
    assert inbox[0]['title'] == 'Alice mentioned you on Sprint' and inbox[0]['preview'] == 'Ship it @Bob'
    table = bob.run('inbox').stdout.splitlines()
    assert table[0].split() == ['NEW', 'WHEN', 'WHAT', 'PREVIEW'] and 'Alice mentioned you on Sprint' in table[1]


def test_a_revoked_key_and_a_viewers_key_writing_fail_with_one_clear_line(world):
    vic = logged_in(world, 'vic')
    assert vic.json('boards')[0]['slug'] == 'sprint'  # a viewer reads
    vic.fails('comment', 'add', '--worktree', 'auth-fix', 'hi',
              message='Your role (viewer) cannot comment; it needs member or higher.')
    vic.fails('session', 'start', '--worktree', 'auth-fix', '--agent', 'shell', 'ls',
              message='Your role (viewer) cannot start sessions; it needs member or higher.')
    vic.fails('worktree', 'create', 'vic-work', '--repo', 'shop',
              message='Your role (viewer) cannot create worktrees; it needs member or higher.')

    bob = Shell(world.tmp / 'homes' / 'revoked')
    view, key = api_keys.create(world.settings, world.users['bob'], 'to revoke')
    bob.run('login', world.server.url, stdin=key)
    api_keys.revoke(world.users['bob'], view['id'])
    for command in (['boards'], ['inbox'], ['comment', 'add', '--worktree', 'auth-fix', 'x']):
        bob.fails(*command, message='This API key was revoked.')
    Shell(world.tmp / 'homes' / 'nowhere').fails(
        'boards', message='not logged in: run `agor login URL` (or set AGOR_URL and AGOR_API_KEY).')


def test_help_everywhere_and_no_ui_or_database_in_the_cli(world):
    shell = Shell(world.tmp / 'homes' / 'help')
    commands = [[], ['login'], ['boards'], ['worktrees'], ['worktree'], ['worktree', 'create'], ['session'],
                ['session', 'start'], ['session', 'prompt'], ['session', 'stop'], ['comment'], ['comment', 'add'],
                ['inbox']]
    for command in commands:
        result = shell.run(*command, '--help')
        assert result.stdout.startswith(f'Usage: agor {" ".join(command)}'.rstrip()), command
    loaded = subprocess.run([sys.executable, '-c', 'import sys, agor.cli; print(sorted(sys.modules))'], cwd=ROOT,
                            capture_output=True, text=True, env=clean_env(PYTHONPATH=str(ROOT)), check=True).stdout
    assert not {'nicegui', 'sqlmodel', 'sqlalchemy', 'agor.db', 'agor.models'} & set(eval(loaded))
    assert os.access(ROOT / 'agor' / 'cli.py', os.R_OK)
