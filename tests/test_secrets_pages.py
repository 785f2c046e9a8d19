"""The Settings dialog's Env Vars and API Keys pages (NiceGUI's simulated user, every message the server sends
recorded): a value saved there is stored encrypted and never sent to the browser again, in any message or in a page
built later; the session panel's Variables and "runs as"."""
from __future__ import annotations

import asyncio
import json

import httpx
import pytest
from nicegui import core, ui
from nicegui.testing import User as TestUser

from agor import agent_sessions, auth, db, user_secrets
from agor.config import load_settings
from agor.models import Role, User, UserSecret

from components.settings.secrets_list import MASK

from .conftest import PASSWORD, seed_board
from .test_settings_dialog import app, opened  # noqa: F401 (app is a fixture: the real app, Alice and Vic)
from .test_pages import log_in, press

VALUE = 'ghp_value_typed_in_the_page_0123'
KEY = 'sk-ant-typed-in-the-page-4567'


@pytest.fixture
def frames(monkeypatch) -> list[str]:
    """Every message the server sends to any browser from now on, as the websocket would carry it (JSON)."""
    sent: list[str] = []
    emit = core.sio.emit

    async def recording(event, data=None, *args, **kwargs):
        sent.append(json.dumps([event, data], default=str))
        return await emit(event, data, *args, **kwargs)
    monkeypatch.setattr(core.sio, 'emit', recording)
    return sent


async def alice_on(user: TestUser, settings_page: str) -> User:
    """Alice, the first owner, logged in with the Settings dialog open on `settings_page` (with nothing stored)."""
    await user.open('/')
    alice = await asyncio.to_thread(auth.create_first_owner, 'alice@example.com', 'Alice', PASSWORD)
    await log_in(user, 'alice@example.com')
    await user.open(f'/?settings={settings_page}')
    await user.should_see('Nothing stored yet.', retries=30)
    return alice


def page_state(user: TestUser) -> str:
    """Everything the page holds for the browser (what its HTML is built from)."""
    return json.dumps([element._to_dict() for element in user.client.elements.values()], default=str)


async def test_a_saved_value_never_reaches_the_browser_again(user: TestUser, frames):
    alice = await alice_on(user, 'env-vars')
    user.find(marker='env-name').type('GITHUB_TOKEN')
    user.find(marker='env-value').type(VALUE)
    frames.clear()  # the simulated user types on the server side; a browser's typing is not echoed back
    press(user, 'Add')
    await user.should_see(marker='secret-GITHUB_TOKEN', retries=30)
    await user.should_see('GITHUB_TOKEN saved', retries=30)
    [row] = await asyncio.to_thread(_rows)
    assert row.name == 'GITHUB_TOKEN' and VALUE not in row.value
    assert (await asyncio.to_thread(_opened, alice)) == {'GITHUB_TOKEN': VALUE}
    assert frames and not any(VALUE in frame for frame in frames)
    assert VALUE not in page_state(user)

    await user.open('/?settings=env-vars')  # a page built afterwards
    await user.should_see(marker='secret-GITHUB_TOKEN', retries=30)
    assert VALUE not in page_state(user) and not any(VALUE in frame for frame in frames)


async def test_keys_are_saved_replaced_and_deleted_without_being_shown(user: TestUser, frames):
    alice = await alice_on(user, 'api-keys')
    user.find(marker='key-value').type(KEY)
    frames.clear()
    user.find(marker='add-key-value').click()
    await user.should_see(marker='secret-ANTHROPIC_API_KEY', retries=30)
    assert (await asyncio.to_thread(_opened, alice)) == {'ANTHROPIC_API_KEY': KEY}
    user.find(marker='delete-ANTHROPIC_API_KEY').click()
    await user.should_see('Nothing stored yet.', retries=30)
    assert (await asyncio.to_thread(_opened, alice)) == {}
    assert not any(KEY in frame for frame in frames) and KEY not in page_state(user)


async def test_a_refused_name_says_why_and_stores_nothing(user: TestUser):
    await alice_on(user, 'env-vars')
    user.find(marker='env-name').type('LD_PRELOAD')
    user.find(marker='env-value').type('/tmp/evil.so')
    press(user, 'Add')
    await user.should_see('LD_PRELOAD cannot be set here', retries=30)
    assert await asyncio.to_thread(_rows) == []


def _rows() -> list[UserSecret]:
    with db.read() as session:
        return list(session.query(UserSecret).all())


def _opened(user) -> dict[str, str]:
    with db.read() as session:
        return user_secrets.opened_env(session, user.id).env


async def test_the_creator_opts_a_session_into_variables_a_teammate_sees_it_runs_as_her(user: TestUser, git_repo):
    await user.open('/')
    seeded = await asyncio.to_thread(seed_board, load_settings(), git_repo, bob=Role.member)
    alice = seeded.owner
    await asyncio.to_thread(user_secrets.set_env, alice, 'DEPLOY_TOKEN', 'deploy-value-9876', 'session')
    agent = await asyncio.to_thread(agent_sessions.create, alice, seeded.worktree.id, 'shell')
    await log_in(user, 'alice@example.com')
    await user.open(f'/b/{seeded.board.slug}?session={agent.id}')
    await user.should_see('Shell · runs as you', retries=30)
    user.find(marker='session-variables').click()
    await user.should_see('This session gets', retries=30)
    user.find(kind=ui.select, content='This session gets').elements.pop().set_value(['DEPLOY_TOKEN'])
    user.find(marker='save-session-variables').click()
    await user.should_see('Session variables saved', retries=30)
    assert (await asyncio.to_thread(user_secrets.session_env, alice, agent.id))['selected'] == ['DEPLOY_TOKEN']
    assert 'deploy-value-9876' not in page_state(user)

    await user.open('/logout')
    await log_in(user, 'bob@example.com')
    await user.open(f'/b/{seeded.board.slug}?session={agent.id}')
    await user.should_see('Shell · runs as Alice', retries=30)
    await user.should_not_see(marker='session-variables')


async def test_over_a_real_websocket_a_typed_value_is_never_sent_back(app):
    """The real app and a websocket client as a browser: from the page load on, no message the server sends and no
    page built afterwards carries the value typed into Env Vars, added and then replaced."""
    frames: list[str] = []
    async with httpx.AsyncClient(timeout=30) as http:
        page = await opened(app, 'alice', '/?settings=env-vars', http)
        page.sio.on('*', lambda event, data: frames.append(json.dumps([event, data], default=str)))
        try:
            await page.fire(page.one(label='Name', event='update:value'), 'update:value', 'GITHUB_TOKEN')
            await page.fire(page.one(label='Value', event='update:value'), 'update:value', VALUE)
            await page.fire(page.one(label='Add', tag='q-btn'), 'click')
            await page.wait_for(lambda: 'GITHUB_TOKEN saved' in page.notices or page.warnings)
            assert not page.warnings, page.warnings
            [replace] = await page.wait_for(lambda: page.find(label=f'{MASK} (type to replace)', event='update:value'))
            await page.fire(replace, 'update:value', VALUE + '-2')
            await page.fire(page.find(tag='q-btn', prop=('icon', 'save'))[0], 'click')
            await page.wait_for(lambda: 'GITHUB_TOKEN replaced' in page.notices or page.warnings)
            assert not page.warnings, page.warnings
        finally:
            await page.close()
        again = await page.load(http, '/?settings=env-vars')
    await asyncio.to_thread(user_secrets.init, app.settings)  # the app's master secret, from its data dir
    assert (await asyncio.to_thread(_opened, app.alice)) == {'GITHUB_TOKEN': VALUE + '-2'}
    assert frames and not any(VALUE in frame for frame in frames)
    assert again.status_code == 200 and 'GITHUB_TOKEN' in again.text and VALUE not in again.text
