from __future__ import annotations

import os
import shutil
import subprocess
import tempfile
import threading
from collections.abc import Callable
from pathlib import Path
from types import SimpleNamespace
from typing import Any

import pytest

from agor import auth, boards, credentials, db, repos, unix_accounts, user_secrets
from agor.config import Settings, load_settings
from agor.models import Role, User
from agor.runtimes import registry
from agor.runtimes.base import Runtime

pytest_plugins = ['tests.runtime_fixtures']

PASSWORD = 'correct-horse'
EXECUTOR = 'agor-t-exec'  # as root, terminals and agents run as this account (insulated mode, the default as root)


def agent_account() -> unix_accounts.Account:
    """The account these tests' agents run as: the executor as root (insulated mode), else the current one."""
    return unix_accounts.current() if os.geteuid() else unix_accounts.lookup(EXECUTOR)


def ensure_account(name: str) -> None:
    if subprocess.run(['id', name], capture_output=True).returncode != 0:
        subprocess.run(['useradd', '--create-home', '--shell', '/bin/bash', name], check=True)


def pytest_configure(config: pytest.Config) -> None:
    """As root, temp dirs live in a base of their own that other accounts may pass through: pytest's shared default
    (/tmp/pytest-of-root) is reset to 0700 by every pytest run that starts."""
    if os.geteuid() == 0 and not config.option.basetemp:
        config.option.basetemp = tempfile.mkdtemp(prefix='agor-pytest-', dir='/tmp')


def pytest_unconfigure(config: pytest.Config) -> None:
    base = str(config.option.basetemp or '')
    if os.geteuid() == 0 and Path(base).name.startswith('agor-pytest-'):
        shutil.rmtree(base, ignore_errors=True)


@pytest.fixture(autouse=True)
def data_dir(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    """Every test gets its own data dir (main.py reads it from the environment in user-fixture tests). As root the
    app runs agents and terminals as an executor account, which must be able to pass through the temp dirs."""
    path = tmp_path / 'data'
    monkeypatch.setenv('AGOR_DATA_DIR', str(path))
    monkeypatch.setenv('AGOR_REPO_ROOTS', str(tmp_path))
    for name in ('DATABASE_URL', 'AGOR_DEMO', 'AGOR_OWNER_EMAIL', 'AGOR_OWNER_PASSWORD', 'AGOR_UNIX_USER_MODE'):
        monkeypatch.delenv(name, raising=False)
    if os.geteuid() == 0:
        ensure_account(EXECUTOR)
        monkeypatch.setenv('AGOR_EXECUTOR_ACCOUNT', EXECUTOR)
        for directory in (tmp_path, tmp_path.parent):  # pytest makes them 0700: let others pass, not list
            directory.chmod(0o711)
    auth.throttle.__init__()  # type: ignore[misc]
    credentials.configure({})
    user_secrets.reset()
    return path


@pytest.fixture
def settings(data_dir: Path) -> Settings:
    settings = load_settings()
    db.init(settings.database_url)
    user_secrets.init(settings)
    return settings


@pytest.fixture
def instance_keys() -> None:
    """The operator's provider keys (AGOR_AGENT_ENV_*) for every agent CLI, so that sessions of any runtime queue."""
    credentials.configure({'ANTHROPIC_API_KEY': 'test-key', 'OPENAI_API_KEY': 'test-key', 'GEMINI_API_KEY': 'test-key'})


@pytest.fixture
def make_user(settings: Settings):
    """make_user('member') -> a saved User with that role (the first one made is the owner)."""
    owner: list[User] = []

    def make(role: str = 'member', name: str | None = None) -> User:
        if not owner:
            owner.append(auth.create_first_owner('owner@example.com', 'Olivia Owner', PASSWORD))
            if role == 'owner':
                return owner[0]
        label = name or f'{role.title()} {len(owner)}'
        owner.append(auth.create_user(owner[0], f'{label.lower().replace(" ", ".")}@example.com', label, PASSWORD,
                                      Role.parse(role)))
        return owner[-1]
    return make


@pytest.fixture
def git_repo(tmp_path: Path) -> Path:
    """A real git repository with two commits on main and a branch `feature`."""
    path = tmp_path / 'src' / 'shop'
    path.mkdir(parents=True)
    run = lambda *a: subprocess.run(['git', *a], cwd=path, check=True, capture_output=True)  # noqa: E731
    run('init', '-q', '-b', 'main')
    for name in ('README.md', 'app.py'):
        (path / name).write_text(f'{name}\n')
        run('add', name)
        run('-c', 'user.name=T', '-c', 'user.email=t@example.com', 'commit', '-qm', f'add {name}')
    run('branch', 'feature')
    return path


def at_once(count: int, action: Callable[[int], Any]) -> list:
    """`action(i)` in `count` threads released at once; what they returned (any exception fails the test)."""
    barrier = threading.Barrier(count)
    results: list = []
    errors: list = []

    def one(i: int) -> None:
        barrier.wait()
        try:
            results.append(action(i))
        except Exception as error:  # noqa: BLE001 (collected for the assertion below)
            errors.append(error)
    threads = [threading.Thread(target=one, args=(i,)) for i in range(count)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(60)
    assert errors == []
    return results


def seed_board(settings: Settings, git_repo: Path, **team: Role) -> SimpleNamespace:
    """Owner Alice, the named teammates (<name>@example.com), worktree auth-fix of `git_repo` at (0, 100) on board
    'Sprint' next to its zone 'Review' (600, 0, 500 x 400)."""
    owner = auth.create_first_owner('alice@example.com', 'Alice', PASSWORD)
    users = {'alice': owner}
    for name, role in team.items():
        users[name] = auth.create_user(owner, f'{name}@example.com', name.title(), PASSWORD, role)
    repo = repos.register_local(settings, owner, str(git_repo))
    worktree = repos.create_worktree(settings, owner, repo.id, 'auth-fix')
    board = boards.create_board(owner, 'Sprint')
    zone = boards.create_zone(owner, board.id, 'Review', x=600, y=0, w=500, h=400)
    boards.place_card(owner, board.id, worktree.id, 0, 100)
    return SimpleNamespace(owner=owner, users=users, worktree=worktree, board=board, zone=zone)


@pytest.fixture
def board_app(tmp_path: Path, git_repo: Path):
    """The app running as a subprocess on the seeded board (Alice the owner, Bob a member): (server, seeded)."""
    from .app_server import running_app
    with running_app(tmp_path / 'app') as server:
        db.init(server.database_url)
        yield server, seed_board(load_settings(data_dir=str(server.data_dir)), git_repo, bob=Role.member)


@pytest.fixture
def postgres_url():
    """A private PostgreSQL server (tests.servers) for this test: its URL."""
    from .servers import postgres_server
    with postgres_server() as url:
        yield url


@pytest.fixture
def redis_url():
    """A private redis-server (tests.servers) for this test: its URL."""
    from .servers import redis_server
    with redis_server() as url:
        yield url


@pytest.fixture(scope='module')
def browser():
    """Debian's Chromium driven by Playwright (the suite's install step puts it at /usr/bin/chromium)."""
    from playwright.sync_api import sync_playwright

    from .app_server import CHROMIUM, CHROMIUM_ARGS
    if not Path(CHROMIUM).exists():
        pytest.fail(f'{CHROMIUM} is missing: run the README test command, which installs Debian chromium')
    with sync_playwright() as playwright:
        browser = playwright.chromium.launch(executable_path=CHROMIUM, args=CHROMIUM_ARGS)
        yield browser
        browser.close()


def require_cli(name: str) -> Runtime:
    """The runtime whose real CLI a test drives. Missing, it skips on a developer's machine but fails under CI or
    scripts/test (AGOR_REQUIRE_AGENT_CLIS), where a green run must prove the real CLIs ran."""
    runtime = registry.get(name)
    if registry.find_binary(runtime, Settings().agent_cli_dir) is None:
        message = f'{runtime.label} CLI is not installed (scripts/test installs it into AGOR_AGENT_CLI_DIR)'
        if os.environ.get('CI') or os.environ.get('AGOR_REQUIRE_AGENT_CLIS'):
            pytest.fail(message)
        pytest.skip(message)
    return runtime
