"""Real Chromium, two users, a real Gemini CLI against our slow fake model: the transcript streams to both,
both cards pulse and both favicons turn teal; Bob opening the session clears only his; only Alice (chimes on) hears
the chime."""
from pathlib import Path

import pytest
from playwright.sync_api import expect

from agor import agent_sessions, db, preferences, repos
from agor.config import load_settings
from agor.models import Role
from agor.runtimes import registry

from . import app_server
from .app_server import running_app
from .conftest import PASSWORD, require_cli, seed_board
from .fake_model_server import FakeModelServer

pytestmark = pytest.mark.browser


@pytest.fixture
def scene(tmp_path: Path, git_repo: Path):
    require_cli('gemini')
    model = FakeModelServer().start()
    try:
        with running_app(tmp_path / 'app', AGOR_AGENT_ENV_GOOGLE_GEMINI_BASE_URL=model.url,
                         AGOR_AGENT_ENV_GEMINI_API_KEY='test-key', AGOR_AGENT_MAX_RETRIES='0') as server:
            db.init(server.database_url)
            seeded = seed_board(load_settings(data_dir=str(server.data_dir)), git_repo, bob=Role.member)
            preferences.set_chime(seeded.owner, enabled=True, sound='coin', volume=0.4, min_seconds=5)
            yield server, seeded, model
    finally:
        model.stop()


def test_streaming_transcript_pulse_favicon_ack_and_chime(browser, scene):
    server, seeded, model = scene
    alice = app_server.open_board(browser, server, 'alice@example.com', PASSWORD, seeded.board.slug)
    bob = app_server.open_board(browser, server, 'bob@example.com', PASSWORD, seeded.board.slug)
    card = f'.agor-card[data-card-id="{seeded.worktree.id}"]'

    alice.locator(card).click()
    alice.get_by_role('button', name='New session').click()
    alice.get_by_label('Agent').click()
    alice.get_by_role('option', name='Gemini').click()
    alice.get_by_role('button', name='Known models').click()
    alice.locator('.agor-models').get_by_role('listitem').get_by_text('gemini-2.5-flash', exact=True).click()
    expect(alice.get_by_label('Model', exact=True)).to_have_value('gemini-2.5-flash')
    alice.get_by_label('Prompt').fill('[[slow:6]] Summarise the repository')
    alice.get_by_role('button', name='Start session').click()
    expect(alice.locator('.agor-prompt')).to_contain_text('Summarise the repository', timeout=15_000)
    alice.keyboard.press('Escape')  # Alice goes back to the board (with the session open it would count as seen)

    chip = bob.locator(f'{card} .agor-session-chip')
    expect(chip).to_contain_text('Gemini · running', timeout=10_000)
    expect(bob.locator('html')).to_have_attribute('data-agor-status', 'running')
    chip.click()  # Bob watches the reply stream in while the run is going
    reply = bob.locator('.agor-entry-assistant').last
    expect(reply).not_to_be_empty(timeout=30_000)  # the Gemini CLI takes seconds to start on a loaded machine
    partial = reply.inner_text()
    expect(chip).to_contain_text('running')
    expect(reply).not_to_have_text(partial, timeout=5000)  # more text arrived: it streams, not one block at the end
    bob.keyboard.press('Escape')  # Bob closes the session before it ends
    expect(bob.locator('.agor-side')).to_be_hidden()

    for page in (alice, bob):  # the run ends: both cards pulse, both tabs say "needs you"
        expect(page.locator(f'{card}.attention')).to_have_count(1, timeout=20_000)
        expect(page.locator('html')).to_have_attribute('data-agor-status', 'needs')
        expect(page).to_have_title('(1) Sprint · Agor')
    assert model.requests[-1].prompts[-1].endswith('Summarise the repository')

    bob.locator(f'{card} .agor-session-chip').click()  # Bob looks: his pulse and dot clear, Alice's stay
    expect(bob.locator('.agor-entry-assistant').last).not_to_be_empty()
    expect(bob.locator(f'{card}.attention')).to_have_count(0)
    expect(bob.locator('html')).to_have_attribute('data-agor-status', 'idle')
    expect(alice.locator(f'{card}.attention')).to_have_count(1)
    expect(alice.locator('html')).to_have_attribute('data-agor-status', 'needs')

    alice.wait_for_function('() => (window.agorChimes || []).length > 0')
    assert alice.evaluate('window.agorChimes') == ['coin']  # played, not blocked
    assert bob.evaluate('window.agorChimes || []') == []  # Bob has chimes off (and did not start it)


def test_new_session_form_permissions_and_models_and_a_gemini_shell_run(browser, scene):
    """The form explains each permission mode, defaults to the runtime's safe one (Gemini's runs the shell), offers
    the runtime's known models and takes any other name; the transcript shows the command that ran."""
    server, seeded, model = scene
    alice = app_server.open_board(browser, server, 'alice@example.com', PASSWORD, seeded.board.slug)
    alice.locator(f'.agor-card[data-card-id="{seeded.worktree.id}"]').click()
    alice.get_by_role('button', name='New session').click()
    explained = alice.locator('.agor-permission-help')
    expect(explained).to_have_text(registry.get('claude-code').mode_help('auto_edit'))
    alice.get_by_label('Agent').click()
    alice.get_by_role('option', name='Gemini').click()
    expect(alice.locator('.q-field').filter(has_text='Permissions')).to_contain_text('Edit without asking (default)')
    expect(explained).to_have_text(registry.get('gemini').mode_help('auto_edit'))
    alice.get_by_label('Permissions', exact=True).click()
    alice.get_by_role('option', name='Plan: read only').click()
    expect(explained).to_have_text(registry.get('gemini').mode_help('plan'))
    alice.get_by_label('Permissions', exact=True).click()
    alice.get_by_role('option', name='Edit without asking (default)').click()

    alice.get_by_role('button', name='Known models').click()
    expect(alice.locator('.agor-models .q-item')).to_have_text(registry.get('gemini').models)
    alice.keyboard.press('Escape')
    alice.get_by_label('Model', exact=True).fill('fake-model')  # not in the list: taken as typed
    alice.get_by_label('Prompt').fill('Run it [[shell:printf agor-%s 42]]')
    alice.get_by_role('button', name='Start session').click()

    expect(alice.locator('.agor-entry-tool_call')).to_contain_text('Shell printf agor-%s 42', timeout=30_000)
    expect(alice.locator('.agor-entry-tool_result')).to_contain_text('agor-42')
    expect(alice.locator('.agor-session-total')).to_contain_text('total 24 tokens in, 14 out', timeout=20_000)
    assert {request.model for request in model.requests} == {'fake-model'}


def test_output_streams_to_a_late_joiner_exactly_once_and_stop_says_who(browser, board_app):
    """Shell output appended in two real browsers, one of them opening the session mid-run; Bob's Stop is named."""
    server, seeded = board_app
    repos.set_level(seeded.owner, seeded.worktree.id, 'prompt')  # Bob may stop Alice's session
    agent = agent_sessions.create(seeded.owner, seeded.worktree.id, 'shell')
    alice = app_server.open_board(browser, server, 'alice@example.com', PASSWORD, seeded.board.slug)
    alice.goto(f'{server.url}/b/{seeded.board.slug}?session={agent.id}')
    script = 'for i in $(seq 1 300); do echo line-$i; sleep 0.01; done; echo all-done'
    alice.get_by_placeholder('Prompt…').fill(script)
    alice.get_by_role('button', name='Send').click()
    expect(alice.locator('.agor-entry-assistant').last).to_contain_text('line-40', timeout=15_000)

    bob = app_server.open_board(browser, server, 'bob@example.com', PASSWORD, seeded.board.slug)
    bob.goto(f'{server.url}/b/{seeded.board.slug}?session={agent.id}')  # while it streams
    expected = ''.join(f'line-{i}\n' for i in range(1, 301)) + 'all-done\n'
    for page in (alice, bob):
        expect(page.locator('.agor-entry-assistant').last).to_contain_text('all-done', timeout=20_000)
        assert ''.join(page.locator('.agor-entry-assistant').all_inner_texts()) == expected

    started = Path(seeded.worktree.path) / 'started'
    alice.get_by_placeholder('Prompt…').fill(f'touch {started}; sleep 60')
    alice.get_by_role('button', name='Send').click()
    for _ in range(200):
        if started.exists():
            break
        bob.wait_for_timeout(50)
    bob.get_by_role('button', name='Stop').click()
    for page in (alice, bob):
        expect(page.locator('.agor-entry-system').last).to_have_text('Stopped by Bob.', timeout=10_000)
        expect(page.locator('.q-badge').filter(has_text='stopped')).to_have_count(1)
