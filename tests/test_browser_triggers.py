"""Real Chromium, two members: Alice gives the zone a trigger in the zone editor (its preview shows a mistake before
saving), drops a card into it, and exactly one real shell session starts; Bob sees the toast and the session. Moving
the card within the zone fires nothing more. A `show_picker` zone asks only the person who dropped the card, again
after a reload."""
import pytest
from playwright.sync_api import expect

from agor import auth, boards, triggers

from .test_browser_board import drag, open_board

pytestmark = pytest.mark.browser


def test_a_drop_fires_once_and_everyone_sees_it(browser, board_app):
    server, seeded = board_app
    alice = open_board(browser, server, 'alice@example.com', seeded.board.slug)
    bob = open_board(browser, server, 'bob@example.com', seeded.board.slug)
    card = f'.agor-card[data-card-id="{seeded.worktree.id}"]'
    zone = f'.agor-zone[data-zone-id="{seeded.zone.id}"]'

    alice.locator(f'{zone} .agor-zone-header').click()
    alice.locator('.q-expansion-item').get_by_text('Trigger', exact=True).click()
    template = alice.get_by_label('Prompt template (empty: no trigger)')
    preview = alice.locator('.agor-trigger-preview')
    template.fill('echo "review {{ worktree.nmae }}"')
    expect(preview).to_contain_text('worktree.nmae does not exist; worktree has name, branch')
    template.fill('{% for a in range(1000) %}{% for b in range(1000) %}{% for c in range(1000) %}{% endfor %}'
                  '{% endfor %}{% endfor %}x')  # would run for ever: stopped in its worker, with a message
    expect(preview).to_have_text('The template took longer than 1 s to render and was stopped.')
    template.fill('echo "review {{ worktree.name }} on {{ worktree.branch }} by {{ user.name }}"')
    expect(preview).to_have_text('echo "review auth-fix on auth-fix by Alice"')  # rendered against the real card
    alice.get_by_label('Agent').click()
    alice.get_by_role('option', name='Shell').click()
    alice.get_by_role('button', name='Save').click()
    expect(bob.locator(zone).get_by_role('img', name='Has a trigger')).to_be_visible()

    expect(alice.locator('.q-dialog')).to_have_count(0)  # the editor closed (and was removed)
    drag(alice, card, zone)
    expect(bob.locator('.agor-toast')).to_contain_text('Alice sent auth-fix to Review', timeout=10_000)
    expect(alice.locator('.agor-toast')).to_contain_text('You sent auth-fix to Review')
    chips = bob.locator(f'{card} .agor-session-chip')
    expect(chips).to_have_count(1)
    expect(chips).to_contain_text('Shell · completed', timeout=15_000)
    bob.locator('.agor-toast').get_by_role('button', name='Open session').click()
    expect(bob.locator('.agor-output').last).to_contain_text('review auth-fix on auth-fix by Alice')
    bob.keyboard.press('Escape')

    # within the zone again, twice: the card moves, nothing fires
    box = alice.locator(zone).bounding_box()
    for dx in (40, 80):
        before, seen = alice.locator(card).bounding_box(), bob.locator(card).get_attribute('style')
        alice.mouse.move(before['x'] + 30, before['y'] + 20)
        alice.mouse.down()
        alice.mouse.move(box['x'] + dx, box['y'] + 60, steps=8)
        alice.mouse.up()
        expect(bob.locator(card)).not_to_have_attribute('style', seen)  # Bob saw it move
        expect(bob.locator(card)).to_have_attribute('data-zone-id', seeded.zone.id)
    alice.wait_for_timeout(1500)
    expect(chips).to_have_count(1)
    expect(bob.locator('.agor-toast')).to_have_count(0)  # Bob's first toast went when he opened it; no new one
    owner = auth.get_user(seeded.board.created_by)
    assert [(f['by'], f['status']) for f in triggers.history(owner, seeded.zone.id)] == [('Alice', 'started')]

    # the zone's history shows the firing, for Bob too
    bob.locator(f'{zone} .agor-zone-header').click()
    expect(bob.locator('.agor-firing')).to_have_count(1)
    expect(bob.locator('.agor-firing')).to_contain_text('Alice sent auth-fix')


def test_show_picker_asks_only_the_dropping_user(browser, board_app):
    server, seeded = board_app
    boards.update_zone(seeded.owner, seeded.zone.id, trigger_template='echo "picked {{ worktree.name }}"',
                       trigger_behavior='show_picker', trigger_runtime='shell')
    alice = open_board(browser, server, 'alice@example.com', seeded.board.slug)
    bob = open_board(browser, server, 'bob@example.com', seeded.board.slug)
    card = f'.agor-card[data-card-id="{seeded.worktree.id}"]'
    drag(bob, card, f'.agor-zone[data-zone-id="{seeded.zone.id}"]')

    picker = bob.locator('.q-dialog').filter(has_text='Zone trigger: Review')
    expect(picker).to_contain_text('echo "picked auth-fix"')
    bob.reload()  # an unanswered picker asks again after a reload
    expect(picker).to_be_visible()
    expect(alice.locator('.q-dialog')).to_have_count(0)
    picker.get_by_role('button', name='Run').click()
    expect(alice.locator('.agor-toast')).to_contain_text('Bob sent auth-fix to Review', timeout=10_000)
    expect(alice.locator(f'{card} .agor-session-chip')).to_contain_text('Shell', timeout=10_000)
    assert [f['status'] for f in triggers.history(seeded.owner, seeded.zone.id)] == ['started']
