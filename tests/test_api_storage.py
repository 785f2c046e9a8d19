"""Scripts calling the API with a key (no cookie) leave no per-request browser storage behind in the app process,
and a browser's own storage survives its API calls. In-process (NiceGUI's simulated user starts main.py here)."""
from __future__ import annotations

import asyncio

import httpx
from nicegui import app, core
from nicegui.testing import User as TestUser

from agor import api_keys, auth
from agor.config import load_settings

from .conftest import PASSWORD


async def test_key_requests_without_a_cookie_do_not_pile_up_user_storage(user: TestUser):
    await user.open('/setup')  # the app is up
    owner = await asyncio.to_thread(auth.create_first_owner, 'alice@example.com', 'Alice', PASSWORD)
    _, key = await asyncio.to_thread(api_keys.create, load_settings(), owner, 'script')
    before = len(app.storage._users)
    async with httpx.AsyncClient(transport=httpx.ASGITransport(core.app), base_url='http://test') as script:
        for _ in range(25):  # like `curl` or the agor CLI: no cookie
            answer = await script.get('/api/v1/me', headers={'Authorization': f'Bearer {key}'})
            assert answer.json()['name'] == 'Alice'
            script.cookies.clear()
            assert (await script.get('/api/v1/me', headers={'Authorization': 'Bearer x'})).status_code == 401
            script.cookies.clear()
    assert len(app.storage._users) <= before + 1
    await user.open('/login')  # a browser's storage (it sends its cookie) is left alone by its API calls
    kept = dict(app.storage._users)
    assert (await user.http_client.get('/api/v1/me', headers={'Authorization': f'Bearer {key}'})).status_code == 200
    assert app.storage._users == kept and kept
