"""Real Chromium: cursors, live drags, facepile and follow between users on one board; nothing leaks to another."""
from pathlib import Path

import pytest
from playwright.sync_api import Page, expect

from agor import boards, db
from agor.config import load_settings
from agor.models import Role

from . import app_server
from .app_server import running_app
from .conftest import PASSWORD, seed_board

pytestmark = pytest.mark.browser


@pytest.fixture
def scene(tmp_path: Path, git_repo: Path):
    with running_app(tmp_path / 'app') as server:
        db.init(server.database_url)
        seeded = seed_board(load_settings(data_dir=str(server.data_dir)), git_repo,
                            bob=Role.member, carol=Role.member, dan=Role.member)
        other = boards.create_board(seeded.owner, 'Elsewhere')
        yield server, seeded.board, other, seeded.worktree, seeded.users


def open_board(browser, server, who: str, slug: str) -> Page:
    return app_server.open_board(browser, server, f'{who}@example.com', PASSWORD, slug)


def inside(point: dict, box: dict) -> bool:
    return box['x'] <= point['x'] <= box['x'] + box['width'] and box['y'] <= point['y'] <= box['y'] + box['height']


def test_cursors_drags_facepile_and_follow(browser, scene):
    server, board, other, worktree, users = scene
    alice, bob, carol = (open_board(browser, server, who, board.slug) for who in ('alice', 'bob', 'carol'))
    dan = open_board(browser, server, 'dan', other.slug)
    bob.get_by_title('Zoom in').click()  # Bob's zoom and pan differ from Alice's
    bob.get_by_title('Zoom in').click()
    card = f'.agor-card[data-card-id="{worktree.id}"]'
    alice_cursor = f'.agor-cursor[data-user-id="{users["alice"].id}"]'

    box = alice.locator(card).bounding_box()
    alice.mouse.move(box['x'] + 20, box['y'] + 30)
    alice.mouse.move(box['x'] + 24, box['y'] + 34)
    for viewer in (bob, carol):  # the arrow tip lands on the same card, whatever the viewer's zoom
        expect(viewer.locator(alice_cursor)).to_contain_text('Alice · hovering auth-fix')
        assert inside(viewer.locator(alice_cursor).bounding_box(), viewer.locator(card).bounding_box())
    expect(bob.locator(f'[data-face="{users["carol"].id}"]')).to_have_count(1)

    start = bob.locator(card).bounding_box()
    alice.mouse.down()
    alice.mouse.move(box['x'] + 120, box['y'] + 90, steps=4)
    expect(bob.locator(alice_cursor)).to_contain_text('dragging auth-fix')
    # the card moves on Bob's screen while Alice still holds the mouse button
    bob.wait_for_function('([sel, x]) => document.querySelector(sel).getBoundingClientRect().x > x + 20',
                          arg=[card, start['x']], timeout=3000)
    # and Alice's cursor travels with it (a move sets the cursor's position without re-rendering the layer)
    bob.wait_for_function('''([cursor, card]) => {
        const tip = document.querySelector(cursor).getBoundingClientRect();
        const box = document.querySelector(card).getBoundingClientRect();
        return tip.x >= box.x && tip.x <= box.right && tip.y >= box.y && tip.y <= box.bottom;
    }''', arg=[alice_cursor, card], timeout=3000)
    alice.mouse.up()

    bob.locator(f'[data-face="{users["alice"].id}"]').click()  # follow Alice
    expect(alice.get_by_text('Bob following you')).to_be_visible()
    alice.get_by_title('Zoom in').click()
    expect(bob.locator('.agor-zoom-level')).to_have_text(alice.locator('.agor-zoom-level').inner_text())
    bob.keyboard.press('Escape')
    expect(alice.get_by_text('Bob following you')).to_have_count(0)

    expect(dan.locator('.agor-cursor')).to_have_count(0)  # another board: no names, no cursors, no counts
    expect(dan.locator('[data-face]')).to_have_count(1)

    alice.context.close()  # Alice closes her tab
    expect(bob.locator(f'[data-face="{users["alice"].id}"]')).to_have_count(0, timeout=10_000)
    expect(bob.locator(alice_cursor)).to_have_count(0)


PACED_DRIVE = '''async (source) => {
    const { paced } = await import('data:text/javascript,' + encodeURIComponent(source));
    let now = 0;
    const timers = [];
    const sent = [];
    const later = (fn, ms) => timers.push({ at: now + ms, fn });
    const tick = (ms) => {  // the fake clock advances; due timers run in order
        const end = now + ms;
        for (;;) {
            timers.sort((a, b) => a.at - b.at);
            if (!timers.length || timers[0].at > end) break;
            const timer = timers.shift();
            now = timer.at;
            timer.fn();
        }
        now = end;
    };
    const send = paced((p) => sent.push([now, p]), 100, later);
    send('first');  // a quiet window: at once
    tick(10); send('b'); tick(10); send('c'); tick(10); send('burst-last');
    tick(200);  // the burst's latest is delivered at the end of the window, nothing else
    send('after-quiet');  // quiet again: at once
    tick(50); send('x'); send.now('drag-end');  // sent at once, and the waiting call is dropped
    tick(500);
    return sent;
}'''


def test_pointer_pacing_sends_the_first_move_at_once_and_always_the_latest(browser):
    """Unit test of components/board_canvas.js `paced` in Chromium, with a fake clock."""
    source = (Path(__file__).parent.parent / 'components' / 'board_canvas.js').read_text()
    page = browser.new_page()
    try:
        sent = page.evaluate(PACED_DRIVE, source)
    finally:
        page.close()
    assert sent == [[0, 'first'], [100, 'burst-last'], [230, 'after-quiet'], [280, 'drag-end']]
