"""Real Chromium, real app process: a board made private leaves an outsider's page at once and nothing of it reaches
their websocket afterwards; a worktree's level is shown and set in its card, and a teammate's prompt (once allowed)
is shown as theirs and runs as the session's creator."""
import re
from pathlib import Path

import pytest
from playwright.sync_api import Page, expect

from agor import agent_sessions, db
from agor.config import load_settings
from agor.models import Role

from . import app_server
from .app_server import AppServer, running_app
from .conftest import PASSWORD, seed_board

pytestmark = pytest.mark.browser
NAME = {'x': 24, 'y': 14}  # a card's title, away from its session chips (a chip opens its session)


@pytest.fixture
def scene(tmp_path: Path, git_repo: Path):
    """Alice (owner) with auth-fix on board Sprint and an idle Shell session of hers in it; Bob and Carol members."""
    with running_app(tmp_path / 'app') as server:
        db.init(server.database_url)
        seeded = seed_board(load_settings(data_dir=str(server.data_dir)), git_repo, bob=Role.member,
                            carol=Role.member)
        seeded.session = agent_sessions.create(seeded.owner, seeded.worktree.id, 'shell')
        yield server, seeded


def board_page(browser, server: AppServer, name: str, slug: str, frames: list[str] | None = None) -> Page:
    """`name`'s own browser context on the board; with `frames`, every websocket message it receives is kept."""
    return app_server.open_board(browser, server, f'{name}@example.com', PASSWORD, slug, selector='.agor-card',
                                 frames=frames)


def test_a_board_made_private_leaves_an_outsider_at_once_and_never_reaches_them_again(browser, scene):
    server, seeded = scene
    carol_frames: list[str] = []
    carol = board_page(browser, server, 'carol', 'sprint', carol_frames)
    bob = board_page(browser, server, 'bob', 'sprint')
    alice = board_page(browser, server, 'alice', 'sprint')

    alice.goto(f'{server.url}/')
    alice.locator('.q-card', has_text='Sprint').get_by_role('button').click()
    alice.get_by_text('Sharing and permissions').click()
    dialog = alice.locator('.q-dialog')
    dialog.get_by_text('Private board', exact=True).click()
    dialog.get_by_text('Bob', exact=True).click()
    dialog.get_by_role('button', name='Save').click()
    expect(alice.get_by_text('Sharing saved')).to_be_visible()

    expect(carol.get_by_text('You no longer have access to the board you had open.')).to_be_visible()
    expect(carol).to_have_url(f'{server.url}/?left=access')
    expect(carol.get_by_text('No boards yet.')).to_be_visible()
    seen_before = len(carol_frames)

    alice.goto(f'{server.url}/b/sprint')
    alice.get_by_role('button', name='Zone').click()
    expect(bob.locator('.agor-zone', has_text='Zone 2')).to_be_visible()  # the board lives on for its members
    for ref in ('sprint', seeded.board.id[:8]):
        carol.goto(f'{server.url}/b/{ref}')
        expect(carol.get_by_text(f"No board '{ref}'.")).to_be_visible()
    carol.goto(f'{server.url}/')
    expect(carol.get_by_text('No boards yet.')).to_be_visible()
    leaked = [f for f in carol_frames[seen_before:] if re.search(r'Sprint|auth-fix|Zone 2|Alice|Bob', f)]
    assert leaked == []


def test_a_worktree_level_in_its_card_and_a_teammates_prompt_run_as_the_creator(browser, scene):
    server, seeded = scene
    carol = board_page(browser, server, 'carol', 'sprint')
    card = carol.locator(f'.agor-card[data-card-id="{seeded.worktree.id}"]')
    card.click(position=NAME)
    dialog = carol.locator('.q-dialog')
    expect(dialog.get_by_text('Only Alice (its owner) or an admin sets what others may do.')).to_be_visible()
    expect(dialog.locator('.q-field--disabled', has_text='Others may')).to_contain_text('Start their own sessions')
    expect(dialog.get_by_role('button', name='Archive')).to_be_disabled()
    dialog.get_by_text('Shell session').click()
    panel = carol.locator('.agor-side', has_text='runs as Alice')
    expect(panel.get_by_text("To prompt or stop Alice's session you need")).to_be_visible()
    expect(panel.get_by_role('button', name='Send')).to_be_disabled()

    alice = board_page(browser, server, 'alice', 'sprint')
    alice.locator(f'.agor-card[data-card-id="{seeded.worktree.id}"]').click(position=NAME)
    alice.locator('.q-dialog').get_by_label('Others may').click()
    alice.get_by_role('option', name="Prompt and stop others' sessions").click()
    expect(alice.get_by_text('Permissions saved')).to_be_visible()

    carol.reload()
    carol.wait_for_selector('.agor-card')
    card.click(position=NAME)
    carol.locator('.q-dialog').get_by_text('Shell session').click()
    panel = carol.locator('.agor-side', has_text='This session runs as Alice')
    panel.get_by_placeholder(re.compile('Prompt')).fill('echo "as=$AGOR_USER"')
    panel.get_by_role('button', name='Send').click()
    expect(panel.locator('.agor-prompt')).to_have_text('Carol (runs as Alice): echo "as=$AGOR_USER"')
    expect(panel.get_by_text('as=Alice', exact=True)).to_be_visible(timeout=15_000)
