"""Real Chromium, real app process: two members and a viewer on one board."""
import re
from pathlib import Path

import pytest
from playwright.sync_api import Page, expect

from agor import auth, boards, db
from agor.config import load_settings
from agor.models import Role

from . import app_server
from .app_server import AppServer, running_app
from .conftest import PASSWORD, seed_board

pytestmark = pytest.mark.browser


@pytest.fixture
def scene(tmp_path: Path, git_repo: Path):
    """The app running on a board with a 'Review' zone and one card outside it; three users."""
    with running_app(tmp_path / 'app') as server:
        db.init(server.database_url)
        seeded = seed_board(load_settings(data_dir=str(server.data_dir)), git_repo, bob=Role.member, vic=Role.viewer)
        yield server, seeded.board, seeded.zone, seeded.worktree


def open_board(browser, server: AppServer, email: str, slug: str) -> Page:
    return app_server.open_board(browser, server, email, PASSWORD, slug, selector='.agor-card')


def drag(page: Page, source: str, target: str) -> None:
    start = page.locator(source).bounding_box()
    end = page.locator(target).bounding_box()
    page.mouse.move(start['x'] + 30, start['y'] + 20)
    page.mouse.down()
    for step in range(1, 11):  # real pointer moves through the canvas, not a synthetic drop
        page.mouse.move(start['x'] + 30 + (end['x'] + end['width'] / 2 - start['x'] - 30) * step / 10,
                        start['y'] + 20 + (end['y'] + end['height'] / 2 - start['y'] - 20) * step / 10)
    page.mouse.up()


def test_drag_into_zone_is_seen_live_and_persisted(browser, scene):
    server, board, zone, worktree = scene
    alice = open_board(browser, server, 'alice@example.com', board.slug)
    bob = open_board(browser, server, 'bob@example.com', board.slug)
    card = f'.agor-card[data-card-id="{worktree.id}"]'
    expect(bob.locator(card)).to_have_attribute('data-zone-id', '')

    drag(alice, card, f'.agor-zone[data-zone-id="{zone.id}"]')
    expect(bob.locator(card)).to_have_attribute('data-zone-id', zone.id, timeout=3000)  # live, no reload
    for page in (alice, bob):
        page.reload()
        expect(page.locator(card)).to_have_attribute('data-zone-id', zone.id)
    assert boards.board_state(auth.get_user(board.created_by), board.id)['cards'][0]['zone'] == zone.id


def test_viewer_cannot_move_a_card_even_with_a_forged_event(browser, scene):
    server, board, zone, worktree = scene
    vic = open_board(browser, server, 'vic@example.com', board.slug)
    expect(vic.get_by_text('view only')).to_be_visible()
    card = f'.agor-card[data-card-id="{worktree.id}"]'
    drag(vic, card, f'.agor-zone[data-zone-id="{zone.id}"]')
    expect(vic.locator(card)).to_have_attribute('data-zone-id', '')
    # forge the event the canvas would send, straight into NiceGUI's websocket
    vic.evaluate('''([id, x, y]) => {
        const el = document.querySelector('.agor-canvas').closest('[id^="c"]');
        getElement(el.id.slice(1)).$emit('card_move', {id, x, y});
    }''', [worktree.id, 650, 50])
    expect(vic.get_by_text(re.compile('cannot move cards'))).to_be_visible()
    vic.reload()
    expect(vic.locator(card)).to_have_attribute('data-zone-id', '')
    assert boards.board_state(auth.get_user(board.created_by), board.id)['cards'][0]['zone'] is None


def test_zoom_pan_and_fit(browser, scene):
    server, board, _, worktree = scene
    page = open_board(browser, server, 'bob@example.com', board.slug)
    level = page.locator('.agor-zoom-level')
    level.click()
    expect(level).to_have_text('100%')
    page.get_by_title('Zoom in').click()
    expect(level).to_have_text('120%')
    page.mouse.move(650, 500)
    page.keyboard.down('Control')
    page.mouse.wheel(0, 2000)  # far past the limit: clamps at 10%
    page.keyboard.up('Control')
    expect(level).to_have_text('10%')
    card = page.locator(f'.agor-card[data-card-id="{worktree.id}"]')
    before = card.bounding_box()
    page.mouse.move(1100, 600)  # empty background at the bottom right
    page.mouse.down()
    page.mouse.move(1000, 550, steps=5)
    page.mouse.up()
    after = card.bounding_box()
    assert (round(after['x'] - before['x']), round(after['y'] - before['y'])) == (-100, -50)
    page.get_by_title('Fit to content').click()
    expect(level).not_to_have_text('10%')
