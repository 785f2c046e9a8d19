"""Real Chromium, a real app process whose database the test holds locked, so its services are slow for as long as
the test wants: the control that started a slow action is busy (disabled, a spinner) until the action ends, and a
failure says what to do next."""
import sqlite3
from contextlib import contextmanager
from pathlib import Path

import pytest
from playwright.sync_api import Page, expect

from agor import auth, db
from agor.config import load_settings
from agor.models import Role

from . import app_server
from .app_server import AppServer, running_app
from .conftest import PASSWORD, seed_board

pytestmark = pytest.mark.browser


@pytest.fixture
def server(tmp_path: Path):
    with running_app(tmp_path / 'app') as server:
        db.init(server.database_url)
        yield server


@contextmanager
def database_held(server: AppServer):
    """Every write of the app waits while this holds the database's write lock."""
    connection = sqlite3.connect(server.data_dir / 'agor.db', isolation_level=None)
    connection.execute('BEGIN IMMEDIATE')
    try:
        yield
    finally:
        connection.execute('ROLLBACK')
        connection.close()


def expect_busy(button) -> None:
    expect(button).to_have_attribute('aria-busy', 'true')
    expect(button.locator('.q-spinner')).to_be_visible()


def test_create_my_account_is_busy_while_the_server_works(browser, server):
    owner = auth.create_first_owner('alice@example.com', 'Alice', PASSWORD)
    token = auth.create_invite(owner, Role.member)
    page: Page = browser.new_context().new_page()
    page.goto(f'{server.url}/invite/{token}')
    page.get_by_label('Your name').fill('Bob')
    page.get_by_label('Email').fill('bob@example.com')
    page.get_by_label('Password (8+ characters)').fill(PASSWORD)
    button = page.get_by_role('button', name='Create my account')
    with database_held(server):
        button.click()
        expect_busy(button)
        button.click(force=True)  # a second click while it works does nothing
    page.wait_for_url(f'{server.url}/')
    assert [u.email for u in auth.list_users()].count('bob@example.com') == 1


def test_create_worktree_is_busy_while_the_server_works(browser, server, git_repo):
    seeded = seed_board(load_settings(data_dir=str(server.data_dir)), git_repo)
    page = app_server.open_board(browser, server, 'alice@example.com', PASSWORD, seeded.board.slug)
    page.get_by_role('button', name='Worktree', exact=True).click()
    dialog = page.locator('.q-dialog')
    dialog.get_by_label('Name (e.g. auth-fix)').fill('login-page')
    button = dialog.get_by_role('button', name='Create worktree')
    with database_held(server):
        button.click()
        expect_busy(button)
    expect(page.locator('.agor-card', has_text='login-page')).to_be_visible(timeout=15_000)
    expect(dialog).to_have_count(0)
