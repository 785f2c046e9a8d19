"""Real Chromium, two users: a pinned comment with a mention, the inbox, a deep link, a live reply, resolve, and a pin
that travels with its card."""
import re

import pytest
from playwright.sync_api import expect

from . import app_server
from .conftest import PASSWORD

pytestmark = pytest.mark.browser


def test_pin_mention_inbox_deep_link_reply_resolve_and_moving_pin(browser, board_app):
    server, seeded = board_app
    alice = app_server.open_board(browser, server, 'alice@example.com', PASSWORD, seeded.board.slug)
    bob = app_server.open_board(browser, server, 'bob@example.com', PASSWORD, seeded.board.slug)
    card = alice.locator(f'.agor-card[data-card-id="{seeded.worktree.id}"]')

    # Alice pins a comment to the worktree card, mentioning Bob through the autocomplete
    alice.get_by_role('button', name='Comment', exact=True).click()
    box = card.bounding_box()
    alice.mouse.click(box['x'] + 40, box['y'] + 30)
    editor = alice.locator('.q-dialog .agor-editor textarea')
    editor.type('Please review @Bo')
    expect(alice.locator('.agor-mention-option')).to_have_text(['BBob'])
    editor.press('Enter')  # picks Bob
    editor.type('before Friday')
    editor.press('Enter')  # sends
    expect(alice.locator('.agor-comment-body .agor-mention')).to_have_text('@Bob')

    # Bob sees the pin on the card and an unread badge, live
    pin = bob.locator('.agor-pin')
    expect(pin).to_have_count(1)
    expect(pin).to_contain_text('1')
    pin_box, card_box = pin.bounding_box(), bob.locator('.agor-card').bounding_box()
    assert card_box['x'] + card_box['width'] <= pin_box['x'] <= card_box['x'] + card_box['width'] + 12  # its edge
    expect(bob.locator('[aria-label="Inbox"] .q-badge')).to_have_text('1')
    expect(bob.locator('.agor-card .agor-comments-chip')).to_have_attribute('title', '1 open threads')

    # Bob opens the inbox entry's deep link in a new page: the thread is open and selected there
    bob.get_by_role('button', name='Inbox').click()
    entry = bob.locator('.q-menu a.q-item').first
    expect(entry).to_contain_text('Alice mentioned you on Sprint')
    link = entry.get_attribute('href')
    assert link.startswith('/b/sprint?comment=')
    bob2 = bob.context.new_page()
    bob2.goto(server.url + link)
    thread = bob2.locator('.agor-thread.agor-selected')
    expect(thread).to_be_visible()
    expect(thread).to_contain_text('Please review @Bob before Friday')
    expect(bob2.locator('[aria-label="Inbox"] .q-badge')).to_be_hidden()  # opening it marked it read
    stamp = thread.locator('time.agor-time').first
    expect(stamp).to_have_text('just now')
    assert re.search(r'20\d\d', stamp.get_attribute('title'))  # the full date on hover

    # Bob replies; Alice sees the reply live
    thread.get_by_role('button', name='Reply').click()
    reply = bob2.locator('.agor-thread .agor-editor textarea')
    reply.type('On it')
    reply.press('Enter')
    expect(alice.locator('.agor-thread')).to_contain_text('On it')
    expect(alice.locator('.agor-pin')).to_contain_text('2')

    # Alice resolves: the thread leaves the Active filter for both, and the pin goes
    alice.locator('.agor-thread').get_by_role('button', name='Resolve').click()
    for page in (alice, bob2):
        expect(page.locator('.agor-thread')).to_have_count(0)
        expect(page.locator('.agor-pin')).to_have_count(0)
    bob2.get_by_text('Resolved', exact=True).first.click()
    expect(bob2.locator('.agor-thread')).to_contain_text('On it')

    # reopened, the pin is back; Alice drags the card and the pin travels with it on Bob's screen
    bob2.locator('.agor-thread').get_by_role('button', name='Reopen').click()
    expect(bob.locator('.agor-pin')).to_have_count(1)
    before = bob.locator('.agor-pin').bounding_box()
    box = card.bounding_box()
    alice.mouse.move(box['x'] + 120, box['y'] + 60)
    alice.mouse.down()
    alice.mouse.move(box['x'] + 320, box['y'] + 160, steps=6)
    alice.mouse.up()
    bob.wait_for_function('([x, y]) => { const r = document.querySelector(".agor-pin").getBoundingClientRect();'
                          ' return r.x > x + 100 && r.y > y + 50; }', arg=[before['x'], before['y']], timeout=5000)

    # a deep link to a worktree pans to its card and flashes it
    bob2.goto(f'{server.url}/b/sprint?worktree={seeded.worktree.id}')
    expect(bob2.locator('.agor-card.agor-flash')).to_have_count(1)
