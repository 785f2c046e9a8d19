"""A tab opened before its user was demoted, deactivated or logged out elsewhere: real Chromium, real app process.

Two rules, each shown on its own: (1) every action is checked as the user is NOW, so the stale tab's card drop is
refused even when the change reaches the app without any event (made in the database, as another app process behind
the same database or an admin script would); (2) a change made through the app closes that user's open pages within
a second: the page reloads to the login page, or to the UI the new role allows.
"""
import re
import time
from pathlib import Path

import pytest
from playwright.sync_api import Page, expect
from sqlmodel import select

from agor import db
from agor.config import load_settings
from agor.models import CardPlacement, Login, Role, User, utcnow

from . import app_server
from .app_server import running_app
from .conftest import PASSWORD, seed_board
from .test_browser_board import drag

pytestmark = pytest.mark.browser
RELOAD_WITHIN = 1.0  # seconds from the change to the stale page's new document


@pytest.fixture
def scene(tmp_path: Path, git_repo: Path):
    """Owner Alice, member Carol; the board 'Sprint' with a card outside its 'Review' zone."""
    with running_app(tmp_path / 'app') as server:
        db.init(server.database_url)
        yield server, seed_board(load_settings(data_dir=str(server.data_dir)), git_repo, carol=Role.member)


def open_board(browser, server, email: str, slug: str) -> Page:
    return app_server.open_board(browser, server, email, PASSWORD, slug, selector='.agor-card')


def drop_card_in_zone(page: Page, seeded) -> None:
    drag(page, f'.agor-card[data-card-id="{seeded.worktree.id}"]', f'.agor-zone[data-zone-id="{seeded.zone.id}"]')


def assert_card_unmoved(seeded) -> None:
    """Nothing stored: the card is where Alice placed it, last updated by her."""
    with db.read() as session:
        placement = session.exec(select(CardPlacement).where(CardPlacement.worktree_id == seeded.worktree.id)).one()
    assert (placement.zone_id, placement.updated_by) == (None, seeded.owner.id)


def update_carol(seeded, **changes) -> None:
    """Change Carol's account in the database behind the app's back: no event tells her open page."""
    with db.transaction() as session:
        carol = session.get(User, seeded.users['carol'].id)
        for name, value in changes.items():
            setattr(carol, name, value)


def reloaded_since(page: Page, started: float) -> float:
    """Seconds from `started` (epoch) to the start of the page's current document."""
    return page.evaluate('performance.timeOrigin') / 1000 - started


def admin_row(page: Page, email: str):
    return page.locator('.nicegui-row').filter(has=page.get_by_text(email, exact=True)).last


def test_demoted_tab_is_refused_and_downgrades(browser, scene):
    server, seeded = scene
    carol = open_board(browser, server, 'carol@example.com', seeded.board.slug)
    expect(carol.get_by_text('view only')).to_have_count(0)

    update_carol(seeded, role='viewer')
    drop_card_in_zone(carol, seeded)
    expect(carol.get_by_text(re.compile('cannot move cards'))).to_be_visible()
    assert_card_unmoved(seeded)
    update_carol(seeded, role='member')

    alice = app_server.open_board(browser, server, 'alice@example.com', PASSWORD, seeded.board.slug)
    alice.goto(f'{server.url}/admin')
    admin_row(alice, 'carol@example.com').locator('.q-select').click()
    started = time.time()
    alice.get_by_role('option', name='viewer', exact=True).click()
    expect(carol.get_by_text('view only')).to_be_visible(timeout=10_000)
    assert reloaded_since(carol, started) < RELOAD_WITHIN


def test_deactivated_tab_is_refused_and_logged_out(browser, scene):
    server, seeded = scene
    carol = open_board(browser, server, 'carol@example.com', seeded.board.slug)
    update_carol(seeded, active=False)
    drop_card_in_zone(carol, seeded)
    expect(carol.get_by_text('Welcome back')).to_be_visible()  # told, then closed: the login page
    assert_card_unmoved(seeded)
    update_carol(seeded, active=True)

    carol = open_board(browser, server, 'carol@example.com', seeded.board.slug)
    alice = app_server.open_board(browser, server, 'alice@example.com', PASSWORD, seeded.board.slug)
    alice.goto(f'{server.url}/admin')
    started = time.time()
    admin_row(alice, 'carol@example.com').get_by_role('button', name='Deactivate').click()
    expect(carol.get_by_text('Welcome back')).to_be_visible(timeout=10_000)
    assert reloaded_since(carol, started) < RELOAD_WITHIN
    assert_card_unmoved(seeded)


def test_tab_of_a_login_ended_elsewhere_is_refused_and_closed(browser, scene):
    server, seeded = scene
    carol = open_board(browser, server, 'carol@example.com', seeded.board.slug)
    with db.transaction() as session:  # her login ended behind the app's back (no event reaches the page)
        for login in session.exec(select(Login).where(Login.user_id == seeded.users['carol'].id)):
            login.ended_at = utcnow()
    drop_card_in_zone(carol, seeded)
    expect(carol.get_by_text('Welcome back')).to_be_visible()
    assert_card_unmoved(seeded)

    carol = open_board(browser, server, 'carol@example.com', seeded.board.slug)
    other_tab = carol.context.new_page()
    started = time.time()
    other_tab.goto(f'{server.url}/logout')
    expect(other_tab.get_by_text('Welcome back')).to_be_visible()
    expect(carol.get_by_text('Welcome back')).to_be_visible(timeout=10_000)
    assert reloaded_since(carol, started) < RELOAD_WITHIN
    assert_card_unmoved(seeded)
