"""Refresh the screenshots in README.md and docs/ with three people on the demo board.

    AGOR_AGENT_CLI_DIR=... .venv/bin/python scripts/screenshots.py

Starts the app in demo mode on a scratch data dir (tests/app_server.py), logs Alice, Bob and Carol in with real
logins, adds a pinned thread and a session, moves their pointers, and writes docs/screenshot-board.png,
docs/screenshot-comments.png, docs/screenshot-presence.png and (Alice making a personal API key)
docs/screenshot-settings.png from real headless Chromium."""
from __future__ import annotations

import sys
import tempfile
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from playwright.sync_api import sync_playwright  # noqa: E402

from agor import agent_sessions, api_keys, auth, boards, comments, db  # noqa: E402
from agor.config import load_settings  # noqa: E402
from tests.app_server import CHROMIUM, CHROMIUM_ARGS, log_in, running_app  # noqa: E402

DOCS = ROOT / 'docs'
SIZE = {'width': 1400, 'height': 820}


def main() -> None:
    with tempfile.TemporaryDirectory() as scratch, running_app(Path(scratch) / 'app', AGOR_DEMO='1') as server:
        db.init(server.database_url)
        people = {u.email.split('@')[0]: u for u in auth.list_users()}
        board = next(b for b in boards.list_boards(people['alice']) if b['name'] == 'Sprint 42')
        state = boards.board_state(people['alice'], board['id'])
        card = {c['name']: c for c in state['cards']}
        comments.create(people['carol'], board['id'], '@Alice the login flow still fails on Safari: can you look?',
                        target_type='worktree', target_id=card['auth-fix']['id'], pin=(80, 120))
        comments.create(people['bob'], board['id'], 'Release on Thursday: everything in **Review** by Wednesday.')
        agent_sessions.create(people['alice'], card['billing-v2']['id'], 'shell')
        with sync_playwright() as playwright:
            browser = playwright.chromium.launch(executable_path=CHROMIUM, args=CHROMIUM_ARGS)
            pages = {}
            for name in ('alice', 'bob', 'carol'):
                page = browser.new_context(viewport=SIZE).new_page()
                log_in(page, server, f'{name}@example.com', 'demo-password')
                page.goto(f'{server.url}/b/{board["slug"]}')
                page.wait_for_selector('.agor-card')
                pages[name] = page
            alice, bob, carol = pages['alice'], pages['bob'], pages['carol']
            hover(bob, 'search-api')
            hover(carol, 'auth-fix', dy=70)
            alice.wait_for_selector('.agor-cursor >> nth=1')
            alice.mouse.move(1300, 760)
            alice.screenshot(path=str(DOCS / 'screenshot-board.png'))

            alice.get_by_role('button', name='Comments').first.click()
            alice.wait_for_selector('.agor-thread')
            hover(bob, 'rate-limits')
            alice.wait_for_timeout(400)  # the cursor glides to its new place (a CSS transition)
            alice.screenshot(path=str(DOCS / 'screenshot-comments.png'))

            alice.get_by_role('button', name='Close comments').click()
            box = alice.locator('.agor-card', has_text='docs-refresh').bounding_box()
            alice.mouse.move(box['x'] + 60, box['y'] + 20)
            alice.mouse.down()
            alice.mouse.move(box['x'] - 260, box['y'] + 60, steps=12)
            bob.wait_for_selector('.agor-cursor-label:has-text("dragging")')
            bob.wait_for_timeout(400)
            bob.screenshot(path=str(DOCS / 'screenshot-presence.png'))
            alice.mouse.up()
            settings_page(alice, server)
            browser.close()


def settings_page(alice, server) -> None:
    """Settings → Personal API Keys, just after Alice made a key (shown once), above her other keys."""
    settings = load_settings(data_dir=str(server.data_dir))
    owner = next(u for u in auth.list_users() if u.email == 'alice@example.com')
    api_keys.create(settings, owner, 'nightly release script', 90)
    old, _ = api_keys.create(settings, owner, 'old laptop')
    api_keys.revoke(owner, old['id'])
    alice.set_viewport_size({'width': 1200, 'height': 760})
    alice.goto(f'{server.url}/?settings=personal-api-keys')
    dialog = alice.get_by_role('dialog', name='Settings')
    dialog.get_by_label('Name').fill('CI deploy bot')
    dialog.get_by_role('button', name='Create key').click()
    alice.wait_for_selector('text=Copy your new key now')
    alice.mouse.move(10, 740)
    alice.screenshot(path=str(DOCS / 'screenshot-settings.png'))


def hover(page, card: str, dx: float = 120, dy: float = 40) -> None:
    box = page.locator('.agor-card', has_text=card).bounding_box()
    page.mouse.move(box['x'] + dx - 40, box['y'] + dy - 20)
    page.mouse.move(box['x'] + dx, box['y'] + dy, steps=4)


if __name__ == '__main__':
    main()
