"""Real Chromium, three users on one worktree terminal: a member types, another member sees it live, a viewer
watches but cannot type (neither through the keyboard nor with a forged event)."""
from __future__ import annotations

import re
import shutil
import subprocess
import tempfile
from pathlib import Path

import pytest
from playwright.sync_api import Page, expect

from agor import db
from agor.config import load_settings
from agor.models import Role

from .app_server import log_in, running_app
from .conftest import PASSWORD, seed_board
from .test_terminals import EXECUTOR, IS_ROOT, ensure_account

pytestmark = pytest.mark.browser


@pytest.fixture
def scene(monkeypatch, git_repo: Path):
    shared = Path(tempfile.mkdtemp(prefix='agor-bt-', dir='/tmp'))  # other accounts can pass through it
    shared.chmod(0o711)
    source = shared / 'src' / 'shop'
    shutil.copytree(git_repo, source)
    monkeypatch.setenv('AGOR_REPO_ROOTS', str(shared))
    env = {'AGOR_REPO_ROOTS': str(shared), 'AGOR_TMUX_DIR': str(shared / 'tmux')}
    if IS_ROOT:  # tmux never runs as root: use an executor account
        ensure_account(EXECUTOR)
        env.update(AGOR_UNIX_USER_MODE='insulated', AGOR_EXECUTOR_ACCOUNT=EXECUTOR)
    try:
        with running_app(shared / 'data', **env) as server:
            db.init(server.database_url)
            seeded = seed_board(load_settings(data_dir=str(server.data_dir)), source, bob=Role.member,
                                dan=Role.viewer)
            yield server, seeded.worktree
    finally:
        for socket in (shared / 'tmux').glob('*/tmux'):
            subprocess.run(['tmux', '-S', str(socket), 'kill-server'], capture_output=True)
        shutil.rmtree(shared, ignore_errors=True)


def open_terminal(browser, server, who: str, worktree_id: str) -> Page:
    page = browser.new_context(viewport={'width': 1100, 'height': 700}).new_page()
    log_in(page, server, f'{who}@example.com', PASSWORD)
    page.goto(f'{server.url}/w/{worktree_id[:8]}/terminal')
    expect(screen(page)).to_contain_text('$', timeout=10_000)  # the shell's prompt
    return page


def screen(page: Page):
    return page.locator('.xterm-rows')


def test_two_members_share_a_terminal_and_a_viewer_only_watches(browser, scene):
    server, worktree = scene
    alice = open_terminal(browser, server, 'alice', worktree.id)
    bob = open_terminal(browser, server, 'bob', worktree.id)
    dan = open_terminal(browser, server, 'dan', worktree.id)

    alice.locator('.xterm').click()
    alice.keyboard.type('echo hello-$RANDOM')
    alice.keyboard.press('Enter')
    for page in (alice, bob, dan):
        expect(screen(page)).to_contain_text('echo hello-$RANDOM')
        expect(screen(page)).to_contain_text(re.compile(r'hello-\d+'))
    said = re.search(r'\nhello-(\d+)', screen(alice).inner_text().replace('\xa0', ' ')).group(1)
    expect(screen(bob)).to_contain_text(f'hello-{said}')  # the same output, not a second run

    for page in (alice, bob, dan):
        expect(page.get_by_text('Attached: Alice (host), Bob, Dan (read-only)')).to_be_visible()
    expect(dan.get_by_text('read-only', exact=True)).to_be_visible()
    expect(bob.get_by_text('read-only', exact=True)).to_have_count(0)
    expect(bob.get_by_text('Shared shell opened by Alice')).to_be_visible()

    dan.locator('.xterm').click()
    dan.keyboard.type('echo typed-by-dan')
    dan.keyboard.press('Enter')
    # a forged keystroke event from Dan's browser is dropped on the server too
    dan.evaluate("getElement(Number(document.querySelector('.agor-terminal').id.slice(1)))"
                 ".$emit('data', 'echo forged-by-dan\\r')")
    bob.locator('.xterm').click()
    bob.keyboard.type('echo bob-was-here')
    bob.keyboard.press('Enter')
    expect(screen(alice)).to_contain_text('bob-was-here')  # Bob's input went through, Dan's (earlier) did not
    assert 'typed-by-dan' not in screen(alice).inner_text() and 'forged-by-dan' not in screen(alice).inner_text()
