"""Terminals on a private tmux socket: window per worktree, sharing, read-only, env, cleanup, floods, Unix modes.

As root (CI) the shared-account tests run in insulated mode with an executor account created here, because tmux
never runs as root; otherwise in simple mode. Insulated and strict get their own tests, which need root.
"""
from __future__ import annotations

import asyncio
import contextlib
import os
import re
import shutil
import tempfile
import time
from pathlib import Path
from types import SimpleNamespace

import pytest

from agor import agent_sessions, auth, credentials, db, repos, terminals, unix_accounts
from agor.config import load_settings, session_secret
from agor.errors import Forbidden, InvalidInput, NotFound
from agor.models import AgentSession, Role
from agor.runtimes.cli_process import process_group_alive
from agor.session_worker import SessionWorkers
from agor.terminals import ShareState, TerminalService, TerminalUnavailable
from agor.terminals.pty import HIGH_WATER, READ_SIZE
from agor.terminals.tmux import TmuxServer

from .conftest import EXECUTOR, PASSWORD, ensure_account, seed_board
from .test_pages import log_in

IS_ROOT = os.geteuid() == 0
# secrets whose names do not look secret: none of them may reach a shell or an agent
LEAKY_ENV = {'MYSQL_PWD': 'pw-in-a-name', 'MY_DB_PASS': 'not-secret-looking', 'GH_PAT': 'pat-value',
             'REDIS_URL': 'redis://:redis-pass@localhost:6379/0', 'HARMLESS_SETTING': 'not-secret-looking'}
STRICT_ACCOUNTS = {'alice': 'agor-t-alice', 'bob': 'agor-t-bob'}
needs_root = pytest.mark.skipif(not IS_ROOT, reason='creating Unix accounts and switching to them needs root')


class Recorder:
    """A stand-in browser: collects output (acknowledging it at once unless told not to), states and endings."""

    def __init__(self, *, auto_ack: bool = True) -> None:
        self.text = ''
        self.received = 0
        self.unacked: list[int] = []
        self.auto_ack = auto_ack
        self.states: list[ShareState] = []
        self.endings: list[str] = []
        self.attachment: terminals.Attachment | None = None

    def output(self, text: str, size: int) -> None:
        self.text += text
        self.received += size
        if self.auto_ack and self.attachment is not None:
            self.attachment.ack(size)
        else:
            self.unacked.append(size)

    def state(self, share: ShareState) -> None:
        self.states.append(share)

    def ended(self, reason: str) -> None:
        self.endings.append(reason)

    async def wait_for(self, pattern: str, timeout: float = 5, *, start: int = 0) -> re.Match:
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            match = re.search(pattern, self.text[start:], re.S)
            if match:
                return match
            await asyncio.sleep(0.01)
        raise AssertionError(f'{pattern!r} not seen; last output: {self.text[-500:]!r}')


@pytest.fixture
def shared_dir():
    """A temp dir other accounts can pass through (pytest's own tmp dirs are 0700 root)."""
    path = Path(tempfile.mkdtemp(prefix='agor-t-', dir='/tmp'))
    path.chmod(0o711)
    yield path
    shutil.rmtree(path, ignore_errors=True)


def make_scene(monkeypatch, shared_dir: Path, git_repo: Path, mode: str, **env: str) -> SimpleNamespace:
    source = shared_dir / 'src' / 'shop'
    shutil.copytree(git_repo, source)
    for name, value in {'AGOR_DATA_DIR': str(shared_dir / 'data'), 'AGOR_REPO_ROOTS': str(shared_dir),
                        'AGOR_TMUX_DIR': str(shared_dir / 'tmux'), 'AGOR_UNIX_USER_MODE': mode, **env}.items():
        monkeypatch.setenv(name, value)
    settings = load_settings()
    db.init(settings.database_url)
    session_secret(settings.data_dir)
    unix_accounts.prepare(settings)  # what the app does at start-up
    alice = auth.create_first_owner('alice@example.com', 'Alice', PASSWORD)
    bob = auth.create_user(alice, 'bob@example.com', 'Bob', PASSWORD, Role.member)
    dan = auth.create_user(alice, 'dan@example.com', 'Dan', PASSWORD, Role.viewer)
    repo = repos.register_local(settings, alice, str(source))
    worktree = repos.create_worktree(settings, alice, repo.id, 'auth-fix')
    other = repos.create_worktree(settings, alice, repo.id, 'other')
    service = terminals.start(settings)
    return SimpleNamespace(settings=settings, service=service, alice=alice, bob=bob, dan=dan, repo=repo,
                           worktree=worktree, other=other)


@pytest.fixture
async def scene(monkeypatch, shared_dir, git_repo):
    """Alice (owner), Bob (member), Dan (viewer); worktrees auth-fix and other; the service on a private socket dir."""
    if IS_ROOT:
        ensure_account(EXECUTOR)
        s = make_scene(monkeypatch, shared_dir, git_repo, 'insulated', AGOR_EXECUTOR_ACCOUNT=EXECUTOR)
    else:
        s = make_scene(monkeypatch, shared_dir, git_repo, 'simple')
    yield s
    terminals.stop()
    s.service.kill_servers()


async def attach(service: TerminalService, user, worktree_id: str, cols: int = 100, rows: int = 30,
                 **kwargs) -> Recorder:
    recorder = Recorder(**kwargs)
    recorder.attachment = await service.open(user, worktree_id, cols, rows, recorder)
    return recorder


async def run(recorder: Recorder, command: str, marker: str, timeout: float = 5) -> str:
    """Type `echo <start>; command; echo <marker>` (typed so that the echoed line does not match); return what the
    command printed."""
    start = len(recorder.text)
    recorder.attachment.write(f'echo BE""GIN-{marker}; {command}; echo {marker[:2]}""{marker[2:]}\r')
    erased = r'(?:\x1b\[[0-9;?]*[A-Za-z])*'  # tmux may erase the line's end (ESC [K) before the newline
    match = await recorder.wait_for(rf'BEGIN-{re.escape(marker)}{erased}\r\n(.*?){re.escape(marker)}', timeout,
                                    start=start)
    return re.sub(r'\x1b(\[[0-9;?]*[A-Za-z]|\([AB]|[=>])', '', match.group(1)).strip()


def server_of(service: TerminalService, worktree_id: str) -> TmuxServer:
    [server] = [server for server in service._servers.values() if server.worktree_id == worktree_id]
    return server


def tmux(s, *args: str) -> str:
    """A tmux command on the server of the scene's worktree auth-fix; its output."""
    return '\n'.join(server_of(s.service, s.worktree.id).run(*args))


def window_size(s) -> str:
    return tmux(s, 'display', '-p', '-t', f'=v-{s.worktree.id}:', '#{window_width}x#{window_height}').strip()


async def test_one_window_per_worktree_reopened_not_duplicated(scene):
    s = scene
    first = await attach(s.service, s.alice, s.worktree.id)
    await first.wait_for(r'[$#] ')
    assert (await run(first, 'pwd', 'DONE-1')).strip() == s.worktree.path  # started in the worktree
    first.attachment.write('echo kept-$((40+2))\r')
    await first.wait_for('kept-42')
    first.attachment.close()

    again = await attach(s.service, s.alice, s.worktree.id)
    await again.wait_for('kept-42')  # the same shell: tmux redraws its screen for the new client
    assert 'kept-42' in server_of(s.service, s.worktree.id).shell().screen()  # what tmux itself shows
    other = await attach(s.service, s.alice, s.other.id)
    await other.wait_for(r'[$#] ')
    for worktree in (s.worktree, s.other):  # a tmux server per worktree, holding only that worktree's window
        server = server_of(s.service, worktree.id)
        assert server.run('list-windows', '-a', '-F', '#{session_name} #{@agor_worktree}') == \
            [f'v-{worktree.id} {worktree.id}']


async def test_two_users_share_keystrokes_and_the_smallest_size(scene):
    s = scene
    alice = await attach(s.service, s.alice, s.worktree.id, 120, 40)
    bob = await attach(s.service, s.bob, s.worktree.id, 80, 24)
    await bob.wait_for(r'[$#] ')
    alice.attachment.write('echo hello-$((6*7))')
    await bob.wait_for(r'echo hello-\$\(\(6\*7\)\)')  # Bob sees Alice typing before she presses Enter
    alice.attachment.write('\r')
    await bob.wait_for('hello-42')  # the output (the typed line says $((6*7)))
    assert window_size(s) == '80x24'
    assert [p.name for p in bob.states[-1].people] == ['Alice', 'Bob']
    assert bob.states[-1].host_name == 'Alice'

    bob.attachment.close()  # the window grows back to the one remaining viewer
    await asyncio.sleep(0.2)
    assert window_size(s) == '120x40'
    assert [p.name for p in alice.states[-1].people] == ['Alice']


async def test_resize_follows_the_viewer(scene):
    s = scene
    alice = await attach(s.service, s.alice, s.worktree.id, 100, 30)
    await alice.wait_for(r'[$#] ')
    alice.attachment.resize(90, 20)
    await wait_until(lambda: window_size(s) == '90x20')
    await asyncio.sleep(0.5)  # tmux passes a new size on to the shell after a short delay
    assert await run(alice, 'stty size', 'DONE-2') == '20 90'


async def test_env_is_the_allowlist_plus_the_user_and_worktree(scene, monkeypatch):
    s = scene
    for name, value in LEAKY_ENV.items():
        monkeypatch.setenv(name, value)
    monkeypatch.setenv('TZ', 'Europe/Berlin')
    credentials.configure({'GREETING': 'granted'})  # AGOR_AGENT_ENV_GREETING
    alice = await attach(s.service, s.alice, s.worktree.id)
    await alice.wait_for(r'[$#] ')
    out = await run(alice, 'echo "$AGOR_USER|$AGOR_USER_EMAIL|$AGOR_WORKTREE|$AGOR_BRANCH|$TZ|$GREETING|'
                           '${AGOR_DATA_DIR-none}|$TERM|$USER"', 'DONE-3')
    account = EXECUTOR if IS_ROOT else unix_accounts.current().name
    assert out == f'Alice|alice@example.com|auth-fix|auth-fix|Europe/Berlin|granted|none|tmux-256color|{account}'
    leaked = await run(alice, 'env | grep -c -e pw-in-a-name -e not-secret-looking -e pat-value -e redis-pass', 'DONE-3b')
    assert leaked == '0'


async def test_viewer_watches_read_only(scene):
    s = scene
    with pytest.raises(Forbidden, match='a member opens it first'):
        await attach(s.service, s.dan, s.worktree.id)  # a viewer cannot start a shell
    alice = await attach(s.service, s.alice, s.worktree.id)
    dan = await attach(s.service, s.dan, s.worktree.id)
    await dan.wait_for(r'[$#] ')
    assert dan.attachment.write('echo typed-by-dan\r') is False
    alice.attachment.write('echo typed-by-alice\r')
    await dan.wait_for('typed-by-alice')  # Dan sees Alice's work ...
    await asyncio.sleep(0.3)
    assert 'typed-by-dan' not in alice.text + dan.text  # ... and nothing he typed reached the shell
    assert {p.name: p.readonly for p in alice.states[-1].people} == {'Alice': False, 'Dan': True}
    clients = tmux(s, 'list-clients', '-F', '#{client_name} #{client_readonly}')
    assert f'{dan.attachment.tty} 1' in clients  # tmux itself also holds Dan's client read-only


async def test_deleting_or_archiving_a_worktree_ends_its_terminal(scene):
    s = scene
    alice = await attach(s.service, s.alice, s.worktree.id)
    bob = await attach(s.service, s.bob, s.worktree.id)
    await bob.wait_for(r'[$#] ')
    server = server_of(s.service, s.worktree.id)
    await asyncio.to_thread(repos.delete_worktree, s.alice, s.worktree.id)
    for viewer in (alice, bob):
        await wait_until(lambda v=viewer: v.endings)
        assert viewer.endings == ['auth-fix was deleted by Alice; its shell has ended.']
    assert not server.is_alive()  # its tmux server is gone

    other = await attach(s.service, s.bob, s.other.id)
    await other.wait_for(r'[$#] ')
    await asyncio.to_thread(repos.set_archived, s.alice, s.other.id, True)
    await wait_until(lambda: other.endings)
    assert other.endings == ['other was archived by Alice; its shell has ended.']
    with pytest.raises(Exception, match='archived'):
        await attach(s.service, s.bob, s.other.id)


async def test_shell_exit_is_reported_and_a_new_open_starts_a_new_shell(scene):
    s = scene
    alice = await attach(s.service, s.alice, s.worktree.id)
    await alice.wait_for(r'[$#] ')
    alice.attachment.write('exit\r')
    await wait_until(lambda: alice.endings)
    assert 'exited' in alice.endings[0]
    again = await attach(s.service, s.alice, s.worktree.id)
    await again.wait_for(r'[$#] ')


async def test_host_makes_a_joiner_read_only_and_closes_the_share(scene):
    s = scene
    alice = await attach(s.service, s.alice, s.worktree.id)
    bob = await attach(s.service, s.bob, s.worktree.id)
    await bob.wait_for(r'[$#] ')
    with pytest.raises(Forbidden):
        await s.service.close_share(s.bob, s.worktree.id)  # only the host can

    await s.service.set_readonly(s.alice, s.worktree.id, s.bob.id, True)
    assert bob.attachment.write('echo from-bob\r') is False
    assert {p.name: p.readonly for p in bob.states[-1].people} == {'Alice': False, 'Bob': True}
    await s.service.set_readonly(s.alice, s.worktree.id, s.bob.id, False)
    assert bob.attachment.write('echo from-bob-$((1+1))\r') is True
    await alice.wait_for('from-bob-2')

    await s.service.close_share(s.alice, s.worktree.id)
    assert bob.endings == ['Alice closed the share of this terminal.']
    assert alice.states[-1].closed and [p.name for p in alice.states[-1].people] == ['Alice']
    with pytest.raises(Forbidden, match='closed the share'):
        await attach(s.service, s.bob, s.worktree.id)
    await s.service.reopen_share(s.alice, s.worktree.id)
    bob = await attach(s.service, s.bob, s.worktree.id)
    await bob.wait_for('from-bob-2')


async def test_utf8_and_colours(scene):
    s = scene
    alice = await attach(s.service, s.alice, s.worktree.id)
    await alice.wait_for(r'[$#] ')
    alice.attachment.write("printf 'x\\033[31mred\\033[0m \\303\\251\\346\\274\\242\\360\\237\\231\\202 done\\n'\r")
    await alice.wait_for('é漢🙂 done')
    assert re.search(r'\x1b\[31mred', alice.text)


async def test_escape_reaches_the_program_quickly(scene):
    s = scene
    alice = await attach(s.service, s.alice, s.worktree.id)
    await alice.wait_for(r'[$#] ')
    assert tmux(s, 'show', '-s', 'escape-time').split() == ['escape-time', '10']
    # a program in raw mode (like vim) prints how long after "go" the lone Esc arrived
    alice.attachment.write("python3 -c \"import os,sys,time,tty;tty.setraw(0);print('go',flush=True);"
                           "t=time.monotonic();os.read(0,1);print('\\r\\nESC-after %.0f ms' % ((time.monotonic()-t)*1e3))\"\r")
    await alice.wait_for(r"(?<!')go\n")
    alice.attachment.write('\x1b')
    match = await alice.wait_for(r'ESC-after (\d+) ms')
    assert int(match.group(1)) < 100  # tmux's default (500 ms) would fail; 10 ms plus scheduling noise passes


async def test_flood_is_bounded_and_ctrl_c_stops_it(scene):
    s = scene
    big = Path(s.worktree.path) / 'big.txt'
    big.write_text(('x' * 99 + '\n') * 400_000)  # 40 MB
    slow = await attach(s.service, s.alice, s.worktree.id, auto_ack=False)  # a browser that shows nothing yet
    fast = await attach(s.service, s.bob, s.worktree.id)
    await fast.wait_for(r'[$#] ')
    fast.attachment.write('cat big.txt; echo END-$((1+1))\r')
    await fast.wait_for('END-2', timeout=30)
    assert sum(slow.unacked) <= HIGH_WATER + READ_SIZE  # the slow one was not flooded
    assert fast.received < 20_000_000  # tmux sent screen updates, not all 40 MB
    for size in slow.unacked:  # the slow browser catches up and ends on the same final screen
        slow.attachment.ack(size)
    slow.auto_ack = True
    await slow.wait_for('END-2', timeout=10)

    fast.attachment.write('yes\r')
    await fast.wait_for(r'y(\x1b\[K)?\r\ny(\x1b\[K)?\r\ny', start=len(fast.text))
    await asyncio.sleep(0.5)
    pressed, start = time.monotonic(), len(fast.text)
    fast.attachment.write('\x03')
    # the prompt is back on screen: the flood stopped (its latency is a benchmark figure, benchmarks/terminal.py)
    await fast.wait_for(r'\^C.*auth-fix\S*\$ ', timeout=5, start=start)
    print(f'40 MB: {fast.received / 1e6:.1f} MB to the fast viewer; Ctrl-C -> prompt {(time.monotonic() - pressed) * 1000:.0f} ms')


async def test_no_tmux_says_how_to_install_it(scene):
    s = scene
    service = TerminalService(s.settings, tmux='/nonexistent/tmux')
    with pytest.raises(TerminalUnavailable, match='apt-get install tmux'):
        await service.open(s.alice, s.worktree.id, 80, 24, Recorder())


async def test_unknown_or_missing_worktree_is_not_reachable(scene):
    s = scene
    with pytest.raises(Exception, match='No worktree'):
        await attach(s.service, s.alice, 'v-0123456789')


def test_root_is_refused_with_a_way_out():
    root = unix_accounts.Account('root', 0, 0, '/root', '/bin/bash')
    with pytest.raises(unix_accounts.AccountError, match='useradd --create-home --shell /bin/bash agor-executor'):
        unix_accounts.refuse_root(root)
    with pytest.raises(unix_accounts.AccountError, match='never run as root'):
        unix_accounts.spawn_as(root)


def test_admins_are_warned_about_simple_mode(settings):
    settings.unix_user_mode = 'simple'
    assert 'can read what the app can, including the database' in terminals.mode_warning(settings)
    settings.unix_user_mode = 'insulated'
    assert terminals.mode_warning(settings) is None


@pytest.mark.skipif(not IS_ROOT, reason='the app refuses simple mode only when it runs as root')
async def test_simple_mode_as_root_is_refused(monkeypatch, shared_dir, git_repo):
    s = make_scene(monkeypatch, shared_dir, git_repo, 'simple')
    try:
        with pytest.raises(unix_accounts.AccountError, match='AGOR_UNIX_USER_MODE=insulated'):
            await attach(s.service, s.alice, s.worktree.id)
    finally:
        terminals.stop()


@needs_root
async def test_insulated_shell_runs_as_the_executor_and_cannot_read_the_data_dir(scene):
    s = scene
    alice = await attach(s.service, s.alice, s.worktree.id)
    await alice.wait_for(r'[$#] ')
    assert (await run(alice, 'whoami', 'DONE-4')).strip() == EXECUTOR
    data = s.settings.data_dir
    assert 'Permission denied' in await run(alice, f'cat {data}/session_secret 2>&1', 'DONE-5')
    assert 'Permission denied' in await run(alice, f'ls {data} 2>&1', 'DONE-6')
    assert 'Permission denied' in await run(alice, f'head -c 16 {data}/agor.db 2>&1', 'DONE-7')
    # ... but can work in its worktree, git included
    out = await run(alice, 'echo new > made-here.txt && git status --short && stat -c %U made-here.txt', 'DONE-8')
    assert out.split() == ['??', 'made-here.txt', EXECUTOR]


def tmux_sockets() -> list[str]:
    """Every listening tmux socket path on the machine, as any account can read them (/proc/net/unix)."""
    return sorted({line.split()[-1] for line in Path('/proc/net/unix').read_text().splitlines()[1:]
                   if line.split()[-1].endswith('/tmux')})


def escape_attempts(target: str) -> str:
    """Shell commands that try to type into and read another tmux window: through $TMUX, through the real socket
    paths and through every path the kernel lists; each prints `reached` if tmux let it in."""
    sockets = [target, *tmux_sockets()]
    tries = ['tmux send-keys -t @0 "echo ESCAPED" Enter', 'tmux capture-pane -p -t @0',
             *(f'tmux -S {sock} send-keys -t @0 "echo ESCAPED" Enter' for sock in sockets),
             *(f'tmux -S {sock} capture-pane -p -a -t @0' for sock in sockets)]
    return '; '.join(f'{{ {t}; }} >/dev/null 2>&1 && echo reached' for t in tries) + '; echo tried'


@needs_root
async def test_a_shell_cannot_reach_another_worktrees_window_through_tmux(scene):
    s = scene
    alice = await attach(s.service, s.alice, s.worktree.id)
    await alice.wait_for(r'[$#] ')
    await run(alice, 'echo alice-secret-screen', 'DONE-11')
    bob = await attach(s.service, s.bob, s.other.id)  # Bob's own worktree: the same executor account
    await bob.wait_for(r'[$#] ')
    target = server_of(s.service, s.worktree.id).socket
    assert (await run(bob, f'ls {s.service.tmux_dir} 2>&1 | head -1', 'DONE-12')).endswith('Permission denied')
    assert await run(bob, escape_attempts(str(target)), 'DONE-13', timeout=15) == 'tried'
    await asyncio.sleep(0.3)
    assert 'ESCAPED' not in alice.text


@needs_root
async def test_viewers_and_read_only_guests_never_size_the_window(scene):
    s = scene
    alice = await attach(s.service, s.alice, s.worktree.id, 100, 30)
    await alice.wait_for(r'[$#] ')
    dan = await attach(s.service, s.dan, s.worktree.id, 2, 1)  # a viewer with a tiny browser
    await dan.wait_for(r'\x1b')
    dan.attachment.resize(2, 1)
    bob = await attach(s.service, s.bob, s.worktree.id, 100, 30)
    await s.service.set_readonly(s.alice, s.worktree.id, s.bob.id, True)
    bob.attachment.resize(3, 2)
    await asyncio.sleep(0.5)
    assert window_size(s) == '100x30'
    await s.service.set_readonly(s.alice, s.worktree.id, s.bob.id, False)  # a guest who may type sizes it again
    await wait_until(lambda: window_size(s) == '3x2')


async def test_no_env_value_is_on_any_command_line(scene, monkeypatch):
    s = scene
    credentials.configure({'ANTHROPIC_API_KEY': 'sk-granted-key-value'})
    alice = await attach(s.service, s.alice, s.worktree.id)
    await alice.wait_for(r'[$#] ')
    assert await run(alice, 'echo "$ANTHROPIC_API_KEY"', 'DONE-14') == 'sk-granted-key-value'  # it did arrive
    for cmdline in Path('/proc').glob('[0-9]*/cmdline'):
        with contextlib.suppress(OSError):
            text = cmdline.read_bytes().replace(b'\0', b' ')
            assert b'sk-granted-key-value' not in text and b'alice@example.com' not in text, text


@needs_root
async def test_strict_shell_is_the_hosts_and_joiners_are_guests(monkeypatch, shared_dir, git_repo):
    for account in STRICT_ACCOUNTS.values():
        ensure_account(account)
    mapping = ','.join(f'{who}@example.com={account}' for who, account in STRICT_ACCOUNTS.items())
    s = make_scene(monkeypatch, shared_dir, git_repo, 'strict', AGOR_UNIX_ACCOUNTS=mapping)
    try:
        with pytest.raises(unix_accounts.AccountError, match=r'your account \(dan@example.com\) has no Unix account'):
            await attach(s.service, s.dan, s.worktree.id)
        alice = await attach(s.service, s.alice, s.worktree.id)
        bob = await attach(s.service, s.bob, s.worktree.id)
        await bob.wait_for(r'[$#] ')
        assert (await run(bob, 'whoami', 'DONE-9')).strip() == 'agor-t-alice'  # Bob types into Alice's shell
        state = bob.states[-1]
        assert (state.host_name, state.account, state.per_user) == ('Alice', 'agor-t-alice', True)
        server = s.service._servers[f'agor-t-alice-{s.worktree.id}']
        clients = server.run('list-clients', '-F', '#{client_name} #{client_uid}')
        assert f'{bob.attachment.tty} {unix_accounts.lookup("agor-t-bob").uid}' in clients  # his client is his

        await s.service.set_readonly(s.alice, s.worktree.id, s.bob.id, True)
        assert 'agor-t-bob (R)' in '\n'.join(server.run('server-access', '-l'))
        assert bob.attachment.write('echo nope\r') is False
        await s.service.close_share(s.alice, s.worktree.id)
        await asyncio.sleep(0.3)
        assert 'agor-t-bob' not in '\n'.join(server.run('server-access', '-l'))  # access revoked with the share
        assert bob.endings == ['Alice closed the share of this terminal.']
        assert (await run(alice, 'whoami', 'DONE-10')).strip() == 'agor-t-alice'
        secret = s.settings.data_dir / 'session_secret'
        assert 'Permission denied' in await run(alice, f'cat {secret} 2>&1', 'DONE-15')

        own = await attach(s.service, s.bob, s.other.id)  # Bob's own shell, as his own account
        await own.wait_for(r'[$#] ')
        assert await run(own, 'whoami', 'DONE-16') == 'agor-t-bob'
        assert await run(own, escape_attempts(str(server.socket)), 'DONE-17', timeout=15) == 'tried'
        assert 'ESCAPED' not in alice.text
    finally:
        terminals.stop()
        s.service.kill_servers()


async def wait_until(condition, timeout: float = 5) -> None:
    deadline = time.monotonic() + timeout
    while not condition():
        if time.monotonic() > deadline:
            raise AssertionError('condition not met in time')
        await asyncio.sleep(0.02)


async def test_terminal_page_reaches_only_worktrees(user, git_repo):
    """The page route takes a worktree reference, nothing else: anything that is not an open worktree is refused."""
    await user.open('/')  # startup has run: the database exists
    seeded = await asyncio.to_thread(seed_board, load_settings(), git_repo, dan=Role.viewer)
    await user.open(f'/w/{seeded.worktree.id}/terminal')
    await user.should_see('Log in', retries=30)  # anonymous: to the login page
    await log_in(user, 'dan@example.com')
    await user.open('/w/v-0123456789/terminal')  # a tmux session name is not a worktree
    await user.should_see("No worktree with id 'v-0123456789'", retries=30)
    await asyncio.to_thread(repos.set_archived, seeded.owner, seeded.worktree.id, True)
    await user.open(f'/w/{seeded.worktree.id[:8]}/terminal')
    await user.should_see('auth-fix is archived: restore it to open its terminal.', retries=30)


async def test_archive_and_delete_during_a_run_stop_its_agents_and_close_its_shell(scene):
    """One event after the commit (`worktree_gone`) reaches the session workers and the terminal service."""
    s = scene
    workers = SessionWorkers(s.settings)
    await workers.start()
    try:
        runs = {}
        for worktree in (s.worktree, s.other):
            shell = await attach(s.service, s.bob, worktree.id)
            await shell.wait_for(r'[$#] ')
            started = Path(worktree.path) / 'started'
            agent = agent_sessions.create(s.bob, worktree.id, 'shell', f'touch {started}; sleep 60 & sleep 60')
            agent_sessions.prompt(s.bob, agent.id, 'echo queued')
            await wait_until(started.exists, timeout=20)
            runs[worktree.id] = shell, agent.id, _pid(agent.id)

        await asyncio.to_thread(repos.set_archived, s.alice, s.worktree.id, True)
        shell, agent_id, pid = runs[s.worktree.id]
        await wait_until(lambda: shell.endings and not process_group_alive(pid), timeout=10)  # the process table
        assert shell.endings == ['auth-fix was archived by Alice; its shell has ended.']
        await wait_until(lambda: agent_sessions.get(s.bob, agent_id)['status'] == 'stopped')
        detail = agent_sessions.get(s.bob, agent_id)
        assert detail['error'] == 'Stopped: auth-fix was archived by Alice.' and detail['queued'] == 0
        assert [e['text'] for e in agent_sessions.transcript(s.bob, agent_id)][-1] == detail['error']
        with pytest.raises(InvalidInput, match='auth-fix is archived: restore it to prompt this session.'):
            agent_sessions.prompt(s.bob, agent_id, 'echo more')

        await asyncio.to_thread(repos.delete_worktree, s.alice, s.other.id)
        shell, agent_id, pid = runs[s.other.id]
        await wait_until(lambda: shell.endings and not process_group_alive(pid), timeout=10)
        assert shell.endings == ['other was deleted by Alice; its shell has ended.']
        assert not Path(s.other.path).exists()
        with pytest.raises(NotFound):
            agent_sessions.get(s.bob, agent_id)  # the session went with its worktree
    finally:
        await workers.stop_all()


def _pid(session_id: str) -> int | None:
    with db.read() as session:
        return session.get(AgentSession, session_id).pid
