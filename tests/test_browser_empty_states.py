"""Real Chromium: empty states speak to the role (an empty board offers + Zone and + Worktree to members and says how
a repository is registered when none is; a viewer is told who comments), and comment pins sit on a card's edge,
stacked, never over its text."""
from pathlib import Path

import pytest
from playwright.sync_api import Page, expect

from agor import auth, boards, comments, db
from agor.config import load_settings
from agor.models import Role

from . import app_server
from .app_server import running_app
from .conftest import PASSWORD, seed_board

pytestmark = pytest.mark.browser


def open_page(browser, server, who: str, path: str, selector: str) -> Page:
    return app_server.open_page(browser, server, f'{who}@example.com', PASSWORD, path, selector=selector)


def test_an_empty_board_by_role_and_without_a_repository(browser, tmp_path: Path):
    with running_app(tmp_path / 'app') as server:
        db.init(server.database_url)
        alice = auth.create_first_owner('alice@example.com', 'Alice', PASSWORD)
        auth.create_user(alice, 'vic@example.com', 'Vic', PASSWORD, Role.viewer)
        board = boards.create_board(alice, 'Empty')
        vic = open_page(browser, server, 'vic', f'/b/{board.slug}', '.agor-canvas')
        owner = open_page(browser, server, 'alice', f'/b/{board.slug}', '.agor-canvas')

        empty = owner.locator('.agor-empty')
        expect(empty).to_contain_text('This board is empty.')
        expect(empty.get_by_role('link', name='Repos → Register a repository')).to_have_attribute('href', '/repos')
        expect(vic.locator('.agor-empty')).to_contain_text('Members add zones and worktrees here')
        expect(vic.locator('.agor-empty').get_by_role('button')).to_have_count(0)

        empty.get_by_role('button', name='+ Zone').click()
        expect(owner.locator('.agor-zone')).to_have_count(1)
        for page in (owner, vic):  # the board has something now: the empty state goes, for everyone
            expect(page.locator('.agor-empty')).to_be_hidden()


def test_a_viewers_drawer_and_pins_on_the_cards_edge(browser, tmp_path: Path, git_repo: Path):
    with running_app(tmp_path / 'app') as server:
        db.init(server.database_url)
        seeded = seed_board(load_settings(data_dir=str(server.data_dir)), git_repo, vic=Role.viewer)
        vic = open_page(browser, server, 'vic', f'/b/{seeded.board.slug}', '.agor-card')
        vic.get_by_role('button', name='Comments').click()
        expect(vic.locator('.agor-side')).to_contain_text(
            'No open threads. Members, admins and the owner comment here; as a viewer you read along.')

        for text, point in (('Over the name', (40, 110)), ('Over the repo', (60, 140))):  # written elsewhere
            comments.create(seeded.owner, seeded.board.id, text, target_type='worktree',
                            target_id=seeded.worktree.id, pin=point)
        vic.reload()
        pins = vic.locator('.agor-pin')
        expect(pins).to_have_count(2)
        card = vic.locator('.agor-card')
        boxes = [pins.nth(i).bounding_box() for i in range(2)]
        for text in (card.locator('.agor-card-name'), card.locator('.agor-card-meta')):
            box = text.bounding_box()
            for pin in boxes:
                assert not overlap(pin, box)  # never over the card's text
        assert not overlap(*boxes)  # stacked, not on top of each other


def overlap(a: dict, b: dict) -> bool:
    return a['x'] < b['x'] + b['width'] and b['x'] < a['x'] + a['width'] and \
        a['y'] < b['y'] + b['height'] and b['y'] < a['y'] + a['height']
