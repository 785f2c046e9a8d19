"""Real Chromium against the demo instance: the one-click demo logins work, and logging in gives the browser a new
session id, so a session cookie planted in the victim's browser beforehand is worth nothing to whoever planted it."""
from __future__ import annotations

import pytest
from playwright.sync_api import expect

from agor import db, demo
from agor.config import load_settings

from .app_server import running_app

pytestmark = pytest.mark.browser


@pytest.fixture(scope='module')
def demo_app(tmp_path_factory):
    """The app in demo mode; the team is seeded here first (the app would, but slower than its start-up timeout on a
    busy test machine), so the app finds it and starts right away."""
    data = tmp_path_factory.mktemp('demo') / 'app'
    settings = load_settings(data_dir=str(data))
    db.init(settings.database_url)
    demo.ensure_seeded(settings)
    with running_app(data, AGOR_DEMO='1') as server:
        yield server


def session_cookie(context) -> dict:
    return next(c for c in context.cookies() if c['name'] == 'session')


def test_the_demo_buttons_log_in(browser, demo_app):
    page = browser.new_context().new_page()
    page.goto(f'{demo_app.url}/login')
    page.get_by_role('button', name='Carol Diaz (member)').click()
    page.wait_for_url(f'{demo_app.url}/')
    expect(page.locator('header')).to_contain_text('Carol Diaz')
    expect(page.get_by_text('Sprint 42', exact=True)).to_be_visible()


def test_login_rotates_the_session_so_a_planted_cookie_gets_nothing(browser, demo_app):
    attacker = browser.new_context()
    attacker_page = attacker.new_page()
    attacker_page.goto(f'{demo_app.url}/login')
    planted = session_cookie(attacker)

    victim = browser.new_context()
    victim.add_cookies([planted])
    page = victim.new_page()
    handoffs: list[str] = []
    page.on('request', lambda request: handoffs.append(request.url) if '/login/complete' in request.url else None)
    page.goto(f'{demo_app.url}/login?next=/repos')
    assert session_cookie(victim)['value'] == planted['value']  # the app took the planted session as it was
    page.get_by_label('Email').fill('alice@example.com')
    page.get_by_label('Password').fill('demo-password')
    page.get_by_role('button', name='Log in').click()
    page.wait_for_url(f'{demo_app.url}/repos')  # where she was going
    expect(page.locator('header')).to_contain_text('Alice Chen')
    assert session_cookie(victim)['value'] != planted['value']

    attacker_page.goto(f'{demo_app.url}/')
    assert attacker_page.url.startswith(f'{demo_app.url}/login')  # not Alice: the planted id was left behind
    assert len(handoffs) == 2  # leaving the old id, then logging in under the new one
    for stale in [f'{demo_app.url}/login/complete', f'{demo_app.url}/login/complete?token=made-up', *handoffs]:
        attacker_page.goto(stale)  # no token, a made-up one, or the victim's, already used
        assert attacker_page.url.startswith(f'{demo_app.url}/login')
    attacker_page.goto(f'{demo_app.url}/')
    assert attacker_page.url.startswith(f'{demo_app.url}/login')
