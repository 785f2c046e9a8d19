"""The Settings dialog on the real app, through real websocket clients (tests/ws_client.py) logged in as different
users: the deep link opens the page it names (an unknown one the first), a new personal API key reaches the browser
once and never again (not in a later page's HTML, not in any later websocket message), each user sees only their own
keys, and an uploaded avatar is checked by its content and served only to logged-in users."""
from __future__ import annotations

import asyncio
import json
import os
import subprocess
from types import SimpleNamespace

import httpx
import pytest

from agor import api_keys, auth, db, preferences, runtime_settings
from agor.config import load_settings
from agor.models import Role

from .app_server import login_cookie, running_app
from .conftest import seed_board
from .ws_client import WsPage

PNG = b'\x89PNG\r\n\x1a\n' + b'\x00' * 64  # what the check reads; browsers get it with the type it was stored as


@pytest.fixture(scope='module')
def app(tmp_path_factory):
    root = tmp_path_factory.mktemp('settings')
    if os.geteuid() == 0:  # agents run as the executor account, which must pass through the temp dirs
        for directory in (root, root.parent):
            directory.chmod(0o711)
    repo = root / 'src' / 'shop'
    repo.mkdir(parents=True)
    for command in (['init', '-q', '-b', 'main'], ['-c', 'user.name=T', '-c', 'user.email=t@example.com', 'commit',
                                                   '-q', '--allow-empty', '-m', 'first']):
        subprocess.run(['git', *command], cwd=repo, check=True, capture_output=True)
    with running_app(root / 'app', AGOR_REPO_ROOTS=str(root)) as server:
        db.init(server.database_url)
        with pytest.MonkeyPatch.context() as patch:
            patch.setenv('AGOR_REPO_ROOTS', str(root))
            settings = load_settings(data_dir=str(server.data_dir))
        seeded = seed_board(settings, repo, vic=Role.viewer)
        alice, vic = seeded.owner, seeded.users['vic']
        yield SimpleNamespace(server=server, settings=settings, alice=alice, vic=vic, seeded=seeded,
                              cookies={'alice': login_cookie(server, alice.id), 'vic': login_cookie(server, vic.id)})


def title(page: WsPage) -> str:
    """The heading of the Settings page shown."""
    return next(e['text'] for e in page.elements.values() if 'text-xl' in e.get('class', []) and e.get('text'))


async def opened(app: SimpleNamespace, who: str, path: str, http: httpx.AsyncClient) -> WsPage:
    page = WsPage(app.server, app.cookies[who])
    await page.open(http, path)
    return page


async def type_and_press(page: WsPage, field: str, text: str, button: str) -> None:
    await page.fire(page.one(label=field, event='update:value'), 'update:value', text)
    await page.fire(page.one(label=button, tag='q-btn'), 'click')


async def test_the_deep_link_opens_the_page_it_names_and_an_unknown_one_opens_general(app):
    async with httpx.AsyncClient(timeout=30) as http:
        for path, expected in (('/?settings=audio', 'Audio'), ('/repos?settings=codex', 'Codex'),
                               ('/?settings=personal-api-keys', 'Personal API Keys'),
                               ('/?settings=no-such-page', 'General'), ('/?settings=', 'General')):
            page = await opened(app, 'alice', path, http)
            try:
                assert title(page) == expected, path
                rail = [e['text'] for e in page.elements.values() if e.get('tag') == 'q-item-section' or
                        'uppercase' in e.get('class', [])]
                assert rail[rail.index('Profile'):] == ['Profile', 'General', 'Env Vars', 'Audio', 'Personal API Keys',
                                                        'MCP authorizations', 'Chat accounts', 'Agentic Tools',
                                                        'API Keys', 'Claude Code', 'Codex', 'Gemini', 'OpenCode']
            finally:
                await page.close()
        page = await opened(app, 'alice', '/', http)  # without the link: no dialog until the menu item is clicked
        try:
            assert not any('text-xl' in e.get('class', []) for e in page.elements.values())
            item = next(i for i, e in page.elements.items() if e.get('tag') == 'q-item' and
                        any(page.elements[str(c)].get('text') == 'Settings' for c in e.get('children', [])))
            await page.fire(item, 'click')
            await page.wait_for(lambda: any('text-xl' in e.get('class', []) for e in page.elements.values()))
            assert title(page) == 'General'
        finally:
            await page.close()


async def test_a_new_key_is_shown_once_and_never_sent_again(app):
    frames: list[str] = []
    async with httpx.AsyncClient(timeout=30) as http:
        page = await opened(app, 'alice', '/?settings=personal-api-keys', http)
        page.update_listeners.append(lambda data: frames.append(json.dumps(data)))
        page.sio.on('*', lambda event, data: frames.append(json.dumps([event, data], default=str)))
        try:
            await type_and_press(page, 'Name', 'deploy bot', 'Create key')
            field = await page.wait_for(lambda: next((i for i, e in page.elements.items()
                                                      if str(e.get('props', {}).get('value')).startswith('agor_')),
                                                     None) or page.warnings)
            assert not page.warnings, page.warnings
            token = page.elements[field]['props']['value']
            me = await http.get(f'{app.server.url}/api/v1/me', headers={'Authorization': f'Bearer {token}'})
            assert me.json()['email'] == 'alice@example.com'  # the key shown is the real one
            assert sum(token in frame for frame in frames) >= 1
            await page.fire(page.one(label='Done', tag='q-btn'), 'click')
            await page.wait_for(lambda: field not in page.elements)
            shown_until = len(frames)
            # afterwards: the list refreshed by another key, a revoke, other pages of the dialog
            await type_and_press(page, 'Name', 'second', 'Create key')
            await page.wait_for(lambda: sum('second' == e.get('text') for e in page.elements.values()) == 1)
            revoke = page.find(label='Revoke', tag='q-btn')
            await page.fire(revoke[-1], 'click')
            await page.wait_for(lambda: any(e.get('text') == 'revoked' for e in page.elements.values()))
            assert not any(token in frame for frame in frames[shown_until:])
            assert token not in json.dumps(page.elements)
        finally:
            await page.close()
        again = await page.load(http, '/?settings=personal-api-keys')
        assert again.status_code == 200 and 'deploy bot' in again.text and token not in again.text
        assert token[:len('agor_12345678')] in again.text  # the public prefix is listed


async def test_each_user_sees_only_their_own_keys(app):
    await asyncio.to_thread(api_keys.create, app.settings, app.alice, 'alice private key')
    await asyncio.to_thread(api_keys.create, app.settings, app.vic, 'vic read-only key')
    async with httpx.AsyncClient(timeout=30) as http:
        for who, mine, theirs in (('vic', 'vic read-only key', 'alice private key'),
                                  ('alice', 'alice private key', 'vic read-only key')):
            response = await WsPage(app.server, app.cookies[who]).load(http, '/?settings=personal-api-keys')
            assert mine in response.text and theirs not in response.text, who


async def test_settings_saved_in_the_dialog_are_stored_for_the_acting_user(app):
    """General's name, Audio (moved here from its old dialog) and a runtime's defaults, saved as Alice."""
    async with httpx.AsyncClient(timeout=30) as http:
        page = await opened(app, 'alice', '/?settings=general', http)
        try:
            await type_and_press(page, 'Display name', '  Alice   Pleasance ', 'Save name')
            await page.wait_for(lambda: 'Name saved' in page.notices)
        finally:
            await page.close()
        assert (await asyncio.to_thread(auth.get_user, app.alice.id)).name == 'Alice Pleasance'

        page = await opened(app, 'alice', '/?settings=audio', http)
        try:
            await page.fire(page.one(text='Play chimes'), 'update:modelValue', True)
            await page.fire(page.one(label='Save', tag='q-btn'), 'click')
            await page.wait_for(lambda: 'Audio settings saved' in page.notices)
        finally:
            await page.close()
        alice = await asyncio.to_thread(auth.get_user, app.alice.id)
        assert preferences.chime(alice)['enabled']

        page = await opened(app, 'alice', '/?settings=gemini', http)
        try:
            await type_and_press(page, 'Extra arguments', '--include-directories /', 'Save')
            await page.wait_for(lambda: any('cannot use --include-directories' in n for n in page.warnings))
            await type_and_press(page, 'Extra arguments', '--debug', 'Save')
            await page.wait_for(lambda: 'Gemini defaults saved' in page.notices)
        finally:
            await page.close()
        saved = await asyncio.to_thread(runtime_settings.get, alice, 'gemini')
        assert saved['extra_args'] == '--debug'


async def upload(http: httpx.AsyncClient, page: WsPage, data: bytes, name: str, kind: str) -> None:
    url = next(e['props']['url'] for e in page.elements.values()  # as the browser's uploader posts: one file
               if '/upload/' in str(e.get('props', {}).get('url')))
    answer = await http.post(f'{page.server.url}{url}', files={'file': (name, data, kind)},
                             cookies={'session': page.cookie})
    assert answer.status_code == 200


async def test_an_avatar_is_checked_by_content_and_served_only_to_logged_in_users(app):
    async with httpx.AsyncClient(timeout=30) as http:
        page = await opened(app, 'vic', '/?settings=general', http)
        try:
            await upload(http, page, b'<svg onload="alert(1)"></svg>', 'face.png', 'image/png')
            await page.wait_for(lambda: any('PNG, JPEG or WebP' in n for n in page.warnings))
            await upload(http, page, b'\xff\xd8\xff' + b'0' * (1024 * 1024), 'big.jpg', 'image/jpeg')
            await page.wait_for(lambda: any('at most 1 MB' in n for n in page.warnings))
            vic = await asyncio.to_thread(auth.get_user, app.vic.id)
            assert vic.avatar_id is None
            await upload(http, page, PNG, 'face.txt', 'text/plain')  # the name and declared type do not matter
            await page.wait_for(lambda: 'Avatar saved' in page.notices)
        finally:
            await page.close()
        vic = await asyncio.to_thread(auth.get_user, app.vic.id)
        url = f'{app.server.url}/avatars/{vic.avatar_id}'
        seen = await http.get(url, cookies={'session': app.cookies['alice']})  # a teammate sees it
        assert seen.status_code == 200 and seen.content == PNG
        assert seen.headers['content-type'] == 'image/png' and seen.headers['x-content-type-options'] == 'nosniff'
        stranger = await http.get(url)
        assert stranger.status_code == 401 and stranger.json()['detail'].startswith('You are logged out')
        header = await WsPage(app.server, app.cookies['alice']).load(http, '/admin')
        assert f'/avatars/{vic.avatar_id}' in header.text  # the admin page's list shows it
        own = await WsPage(app.server, app.cookies['vic']).load(http, '/')
        assert f'/avatars/{vic.avatar_id}' in own.text  # and the header of Vic's pages


async def test_the_new_session_form_starts_with_the_users_defaults(app):
    await asyncio.to_thread(lambda: runtime_settings.save(app.alice, 'codex', model='gpt-5.5', permission_mode='plan',
                                                          extra_args=None))
    async with httpx.AsyncClient(timeout=30) as http:
        page = await opened(app, 'alice', f'/b/{app.seeded.board.slug}', http)
        try:
            await page.opened(lambda: page.fire(page.one(event='card_click'), 'card_click',
                                                {'id': app.seeded.worktree.id}), label='New session', tag='q-btn')
            agent = await page.opened(lambda: page.fire(page.one(label='New session', tag='q-btn'), 'click'),
                                      label='Agent')
            model, mode = page.one(label='Model'), page.one(label='Permissions')
            assert page.elements[model]['props'].get('value', '') == ''  # Claude Code: nothing set, the CLI's own
            codex = next(i for i, option in enumerate(page.elements[agent]['props']['options'])
                         if option['label'] == 'Codex')
            await page.fire(agent, 'update:modelValue', {'value': codex, 'label': 'Codex'})
            await page.wait_for(lambda: page.elements[model]['props'].get('value') == 'gpt-5.5')
            options = page.elements[mode]['props']['options']
            assert options[page.elements[mode]['props']['model-value']['value']]['label'].startswith('Plan')
        finally:
            await page.close()
