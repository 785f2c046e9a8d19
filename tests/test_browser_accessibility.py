"""Real Chromium: the board speaks to screen readers and to machines without an emoji font. Icons are Material icons
(shipped with NiceGUI), every button has a name, "Copy link" is a visible button, and axe-core (pinned, installed by
scripts/test) finds no serious or critical violation on the board, a session, the comments, admin, a terminal and
every page of the Settings dialog."""
import re
import sys
from pathlib import Path

import pytest
from playwright.sync_api import Page, expect

from agor import agent_sessions, comments, db
from agor.config import load_settings
from agor.models import Role
from components.settings.dialog import sections

from . import app_server
from .app_server import running_app
from .conftest import PASSWORD, seed_board

pytestmark = pytest.mark.browser
AXE = Path(sys.prefix) / 'npm' / 'node_modules' / 'axe-core' / 'axe.min.js'  # scripts/test installs it (pinned)
PNG = b'\x89PNG\r\n\x1a\n' + b'\x00' * 16  # what agor.profile takes for a PNG
EMOJI = re.compile('[\U0001F300-\U0001FAFF\u2600-\u27BF\u2300-\u23FF\u2B00-\u2BFF]')


@pytest.fixture
def scene(tmp_path: Path, git_repo: Path):
    """The seeded board with a Shell session on the card and a comment pinned to it; Vic is a viewer."""
    with running_app(tmp_path / 'app') as server:
        db.init(server.database_url)
        seeded = seed_board(load_settings(data_dir=str(server.data_dir)), git_repo, vic=Role.viewer)
        seeded.session = agent_sessions.create(seeded.owner, seeded.worktree.id, 'shell')
        comments.create(seeded.owner, seeded.board.id, 'Check the login flow', target_type='worktree',
                        target_id=seeded.worktree.id, pin=(20, 110))
        yield server, seeded


def open_page(browser, server, who: str, path: str, selector: str = '.agor-card') -> Page:
    return app_server.open_page(browser, server, f'{who}@example.com', PASSWORD, path, selector=selector)


def unnamed_buttons(page: Page) -> list[str]:
    """The lines of the page's accessibility tree that are a button without a name."""
    return [line for line in page.locator('body').aria_snapshot().splitlines() if re.fullmatch(r'\s*- button:?', line)]


def test_material_icons_named_buttons_and_a_visible_copy_link(browser, scene):
    server, seeded = scene
    alice = open_page(browser, server, 'alice', f'/b/{seeded.board.slug}')
    alice.locator(f'.agor-session-chip[data-session-id="{seeded.session.id}"]').click()
    expect(alice.get_by_role('button', name='Close this session')).to_be_visible()  # its tab opened: Comments next
    alice.get_by_role('button', name='Comments').click()
    panel = alice.locator('.agor-side')
    expect(panel.get_by_text('Check the login flow')).to_be_visible()
    expect(panel.get_by_role('button', name='Copy link')).to_be_visible()  # not hidden in a menu
    expect(alice.locator('.agor-card .material-icons', has_text='call_split')).to_be_visible()
    assert EMOJI.findall(alice.locator('body').inner_text()) == []
    assert unnamed_buttons(alice) == []
    for name in ('Zoom in', 'Zoom out', 'Fit to content', 'Sharing and permissions', 'Comments: 1 open', 'Inbox',
                 'Close comments', 'Copy link', 'React'):
        expect(alice.get_by_role('button', name=name, exact=True).first).to_be_visible()

    vic = open_page(browser, server, 'vic', '/', selector='.q-card')
    expect(vic.locator('.q-card', has_text='Sprint').locator('.material-icons')).to_have_text('dashboard')
    assert EMOJI.findall(vic.locator('body').inner_text()) == []


def serious_violations(page: Page) -> list[str]:
    """axe-core's serious and critical violations on the page as it is now, one line each."""
    if not AXE.exists():
        pytest.fail(f'{AXE} is missing: run scripts/test, which installs the pinned axe-core')
    if not page.evaluate('() => !!window.axe'):
        page.add_script_tag(path=str(AXE))
        # what is checked is the page at rest: a panel still fading in has the contrast of half its colour
        page.add_style_tag(content='*, *::before, *::after { transition: none !important; animation: none !important; }')
    result = page.evaluate('() => axe.run(document, {resultTypes: ["violations"]})')
    return [f'{v["id"]} ({v["impact"]}): {v["help"]}: {[n["target"] for n in v["nodes"]][:4]}'
            for v in result['violations'] if v['impact'] in ('serious', 'critical')]


def test_axe_finds_nothing_serious_on_the_board_a_session_the_comments_admin_and_a_terminal(browser, scene):
    server, seeded = scene
    alice = open_page(browser, server, 'alice', f'/b/{seeded.board.slug}')
    assert serious_violations(alice) == []
    alice.locator(f'.agor-session-chip[data-session-id="{seeded.session.id}"]').click()
    expect(alice.get_by_role('button', name='Close this session')).to_be_visible()
    assert serious_violations(alice) == []
    alice.get_by_role('button', name='Comments').click()
    expect(alice.locator('.agor-side').get_by_text('Check the login flow')).to_be_visible()
    assert serious_violations(alice) == []
    alice.keyboard.press('?')
    expect(alice.get_by_text('Keyboard shortcuts')).to_be_visible()
    assert serious_violations(alice) == []

    vic = open_page(browser, server, 'vic', f'/b/{seeded.board.slug}')
    vic.get_by_role('button', name='Comments').click()
    expect(vic.locator('.agor-side').get_by_text('Check the login flow')).to_be_visible()
    assert serious_violations(vic) == []

    alice.goto(f'{server.url}/admin')
    alice.wait_for_selector('text=Invite by link')
    assert serious_violations(alice) == []
    alice.goto(f'{server.url}/w/{seeded.worktree.id}/terminal')
    alice.wait_for_selector('.xterm-screen')
    assert serious_violations(alice) == []


def test_axe_finds_nothing_serious_on_any_page_of_the_settings_dialog(browser, scene):
    server, seeded = scene
    alice = open_page(browser, server, 'alice', '/?settings=general', selector='.q-dialog')
    dialog = alice.get_by_role('dialog', name='Settings')
    expect(dialog.get_by_role('heading', name='General')).to_be_visible()
    with alice.expect_file_chooser() as chooser:  # the uploader is hidden: a named button opens its file picker
        dialog.get_by_role('button', name='Upload an image').click()
    chooser.value.set_files(files=[{'name': 'me.png', 'mimeType': 'image/png', 'buffer': PNG}])
    expect(dialog.get_by_role('button', name='Use initials')).to_be_visible()
    found = {}
    for section in sections(load_settings(data_dir=str(server.data_dir))):
        dialog.get_by_role('navigation', name='Settings pages').get_by_role('listitem') \
            .filter(has_text=re.compile(f'^{re.escape(section.label)}$')).click()
        expect(dialog.get_by_role('heading', name=section.label, exact=True)).to_be_visible()
        found[section.label] = serious_violations(alice)
    assert found == {label: [] for label in found}
    assert unnamed_buttons(alice) == []
