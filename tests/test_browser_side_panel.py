"""Real Chromium, two users: the side panel (a session, the comments) sits beside the canvas, never over it. With
Alice's session open, Bob's drag is seen live and Alice can still drag; sessions open as tabs; the panel's width is
remembered; on a narrow screen the panel takes the screen and "Board" goes back."""
import time
from pathlib import Path

import pytest
from playwright.sync_api import Page, expect

from agor import agent_sessions, db
from agor.config import load_settings
from agor.models import Role

from . import app_server
from .app_server import running_app
from .conftest import PASSWORD, seed_board
from .test_browser_board import drag

pytestmark = pytest.mark.browser


@pytest.fixture
def scene(tmp_path: Path, git_repo: Path):
    """The seeded board (card auth-fix outside zone Review) with two idle Shell sessions of Alice's on the card."""
    with running_app(tmp_path / 'app') as server:
        db.init(server.database_url)
        seeded = seed_board(load_settings(data_dir=str(server.data_dir)), git_repo, bob=Role.member)
        seeded.sessions = [agent_sessions.create(seeded.owner, seeded.worktree.id, 'shell') for _ in range(2)]
        yield server, seeded


def wait_until(condition, timeout: float = 5) -> None:
    deadline = time.monotonic() + timeout
    while not condition():
        assert time.monotonic() < deadline, 'timed out'
        time.sleep(0.05)


def open_board(browser, server, who: str, slug: str, width: int = 1200) -> Page:
    return app_server.open_board(browser, server, f'{who}@example.com', PASSWORD, slug, selector='.agor-card',
                                 width=width)


def test_a_session_open_beside_the_canvas_which_stays_live_and_usable(browser, scene):
    server, seeded = scene
    alice = open_board(browser, server, 'alice', seeded.board.slug)
    bob = open_board(browser, server, 'bob', seeded.board.slug)
    card = f'.agor-card[data-card-id="{seeded.worktree.id}"]'
    first, second = (f'{card} .agor-session-chip[data-session-id="{s.id}"]' for s in seeded.sessions)

    alice.locator(first).click()
    panel = alice.locator('.agor-side')
    expect(panel.get_by_text('Shell · runs as you')).to_be_visible()
    expect(alice.locator('.q-dialog, .q-dialog__backdrop')).to_have_count(0)  # no modal, nothing dims the board
    canvas_box, panel_box = alice.locator('.agor-canvas').bounding_box(), panel.bounding_box()
    assert canvas_box['x'] + canvas_box['width'] <= panel_box['x'] + 1  # beside, not over

    drag(bob, card, f'.agor-zone[data-zone-id="{seeded.zone.id}"]')  # Bob drags: Alice sees it live, panel open
    expect(alice.locator(card)).to_have_attribute('data-zone-id', seeded.zone.id, timeout=3000)

    before = bob.locator(card).bounding_box()  # Alice can still use the canvas (fit, drag), her session open
    alice.get_by_role('button', name='Fit to content').click()
    box = alice.locator(card).bounding_box()
    alice.mouse.move(box['x'] + 40, box['y'] + 15)
    alice.mouse.down()
    alice.mouse.move(box['x'] + 40, box['y'] + 95, steps=6)
    alice.mouse.up()
    bob.wait_for_function('([card, y]) => document.querySelector(card).getBoundingClientRect().y > y',
                          arg=[card, before['y'] + 40], timeout=3000)

    alice.locator(second).click()  # a second session opens as a second tab; both stay
    tabs = panel.get_by_role('tab')
    expect(tabs.filter(has_text='Shell session')).to_have_count(2)
    panel.get_by_role('button', name='Close this session').locator('visible=true').click()
    expect(tabs).to_have_count(1)
    alice.get_by_role('button', name='Comments').click()  # the comments join the same panel as a tab
    expect(tabs).to_have_count(2)
    expect(panel.get_by_text('No open threads.')).to_be_visible()


def test_the_panel_width_is_remembered_and_a_narrow_screen_gets_a_way_back(browser, scene):
    server, seeded = scene
    alice = open_board(browser, server, 'alice', seeded.board.slug)
    alice.get_by_role('button', name='Comments').click()
    panel = alice.locator('.agor-side')
    width = panel.bounding_box()['width']
    handle = alice.get_by_role('separator', name='Resize the panel')
    box = handle.bounding_box()
    alice.mouse.move(box['x'] + 4, box['y'] + 200)
    alice.mouse.down()
    alice.mouse.move(box['x'] - 116, box['y'] + 200, steps=5)
    alice.mouse.up()
    assert round(panel.bounding_box()['width'] - width) == 120
    stored = server.data_dir / 'sessions'
    wait_until(lambda: any('"side_panel_width":' in f.read_text() for f in stored.glob('storage-user-*.json')))
    alice.reload()
    alice.get_by_role('button', name='Comments').click()
    assert round(panel.bounding_box()['width'] - width) == 120

    alice.set_viewport_size({'width': 800, 'height': 700})  # narrow: the panel takes the screen
    expect(panel).to_be_visible()
    assert panel.bounding_box()['width'] == 800
    alice.get_by_role('button', name='Back to the board').click()
    expect(panel).to_be_hidden()
    expect(alice.locator('.agor-card')).to_be_visible()
