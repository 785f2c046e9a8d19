"""Real Chromium, two users: the board's keyboard (Figma and Linear habits). Each shortcut does what the sheet says,
keys typed in a field stay there, and a card moves into a zone by keyboard alone, through the same server path as a
drag (Bob sees it arrive; the zone rule applies), or by the card's "Move to zone" menu."""
import re

import pytest
from playwright.sync_api import Page, expect

from agor import auth, boards

from .test_browser_board import open_board, scene  # noqa: F401 (the fixture)

pytestmark = pytest.mark.browser


def card_of(page: Page, worktree) -> str:
    return f'.agor-card[data-card-id="{worktree.id}"]'


def test_comment_tool_escape_zoom_fit_and_the_sheet(browser, scene):  # noqa: F811
    server, board, _, _ = scene
    page = open_board(browser, server, 'bob@example.com', board.slug)
    canvas, level = page.locator('.agor-canvas'), page.locator('.agor-zoom-level')

    page.keyboard.press('c')
    expect(canvas).to_have_class(lambda_has('agor-commenting'))
    page.keyboard.press('Escape')  # cancels the tool
    expect(canvas).not_to_have_class(lambda_has('agor-commenting'))

    page.get_by_role('button', name='Comments').click()
    search = page.get_by_placeholder('Search comments')
    search.click()
    search.press_sequentially('c?')  # typed in a field: text, not shortcuts
    expect(search).to_have_value('c?')
    expect(canvas).not_to_have_class(lambda_has('agor-commenting'))
    expect(page.locator('.q-dialog')).to_have_count(0)
    search.press('Escape')  # leaves the field; a second Esc closes the top panel
    page.keyboard.press('Escape')
    expect(page.locator('.agor-side')).to_be_hidden()

    level.click()
    expect(level).to_have_text('100%')
    page.keyboard.press('Control+=')
    expect(level).to_have_text('120%')
    page.keyboard.press('Control+-')
    page.keyboard.press('Control+-')
    expect(level).to_have_text('83%')
    page.keyboard.press('Control+0')
    expect(level).to_have_text('100%')
    for _ in range(8):
        page.keyboard.press('Control+-')
    expect(level).to_have_text('23%')
    page.keyboard.press('Shift+1')  # fit
    expect(level).not_to_have_text('23%')

    page.keyboard.press('?')
    sheet = page.locator('.q-dialog')
    expect(sheet.get_by_text('Keyboard shortcuts')).to_be_visible()
    expect(sheet.get_by_text('Space + drag')).to_be_visible()
    page.keyboard.press('Escape')
    expect(sheet).to_have_count(0)


def test_space_drag_pans_instead_of_moving_the_card(browser, scene):  # noqa: F811
    server, board, _, worktree = scene
    page = open_board(browser, server, 'bob@example.com', board.slug)
    card = page.locator(card_of(page, worktree))
    before = card.bounding_box()
    page.keyboard.down(' ')
    page.mouse.move(before['x'] + 30, before['y'] + 20)  # on the card
    page.mouse.down()
    page.mouse.move(before['x'] + 130, before['y'] + 70, steps=5)
    page.mouse.up()
    page.keyboard.up(' ')
    after = card.bounding_box()
    assert (round(after['x'] - before['x']), round(after['y'] - before['y'])) == (100, 50)  # the view moved
    expect(page.locator('.q-dialog')).to_have_count(0)  # not a click on the card either
    page.reload()
    page.wait_for_selector('.agor-card')
    stored = boards.board_state(auth.get_user(board.created_by), board.id)['cards'][0]
    assert (stored['x'], stored['y'], stored['zone']) == (0, 100, None)  # the card did not move


def test_arrow_keys_move_a_card_into_a_zone_like_a_drag(browser, scene):  # noqa: F811
    server, board, zone, worktree = scene
    alice = open_board(browser, server, 'alice@example.com', board.slug)
    bob = open_board(browser, server, 'bob@example.com', board.slug)
    card = card_of(alice, worktree)
    alice.locator('body').click(position={'x': 5, 'y': 400})
    alice.keyboard.press('Tab')
    while not alice.evaluate('(sel) => document.activeElement === document.querySelector(sel)', card):
        alice.keyboard.press('Tab')  # the cards are reached with Tab
    expect(alice.locator(card)).to_have_accessible_name(re.compile('^auth-fix auth-fix · shop'))
    alice.keyboard.press('ArrowDown')
    expect(bob.locator(card)).to_have_attribute('data-zone-id', '')
    for _ in range(12):  # 12 × 50 px to the right: its centre is inside Review
        alice.keyboard.press('Shift+ArrowRight')
    expect(bob.locator(card)).to_have_attribute('data-zone-id', zone.id, timeout=5000)  # the server's zone rule
    expect(alice.locator(card)).to_be_focused()  # still in hand for the next key
    stored = boards.board_state(auth.get_user(board.created_by), board.id)['cards'][0]
    assert (stored['zone'], stored['x'], stored['y']) == (zone.id, 0, 110)  # relative to Review: 600 + 0, 0 + 110

    alice.keyboard.press('Enter')  # opens the card
    dialog = alice.locator('.q-dialog')
    expect(dialog.get_by_text('auth-fix', exact=True).first).to_be_visible()
    expect(dialog.get_by_role('button', name='Move to zone')).to_have_count(0)  # no other zone to go to


def test_move_to_zone_menu(browser, scene):  # noqa: F811
    server, board, zone, worktree = scene
    alice = open_board(browser, server, 'alice@example.com', board.slug)
    bob = open_board(browser, server, 'bob@example.com', board.slug)
    card = card_of(alice, worktree)
    alice.locator(card).focus()
    alice.keyboard.press('Enter')
    alice.locator('.q-dialog').get_by_role('button', name='Move to zone').click()
    alice.locator('.q-menu').get_by_text('Review', exact=True).click()
    expect(alice.locator('.q-dialog')).to_have_count(0)
    expect(bob.locator(card)).to_have_attribute('data-zone-id', zone.id, timeout=5000)


def lambda_has(name: str) -> re.Pattern:
    return re.compile(rf'(^|\s){name}(\s|$)')
