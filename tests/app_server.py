"""Start the real app (`python main.py`) as a subprocess on a free loopback port, for browser tests and benchmarks."""
from __future__ import annotations

import json
import os
import socket
import subprocess
import sys
import time
import uuid
from base64 import b64encode
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import httpx
import itsdangerous

ROOT = Path(__file__).resolve().parent.parent
CHROMIUM = '/usr/bin/chromium'
CHROMIUM_ARGS = ['--headless', '--no-sandbox', '--disable-gpu', '--disable-background-networking',
                 '--disable-component-update', '--disable-sync', '--no-first-run']


@dataclass
class AppServer:
    url: str
    data_dir: Path
    process: subprocess.Popen
    env: dict[str, str] = field(default_factory=dict)  # what the test set (DATABASE_URL, REDIS_URL, ...)
    log: Path | None = None  # the process's output

    @property
    def database_url(self) -> str:
        return self.env.get('DATABASE_URL') or f'sqlite:///{self.data_dir / "agor.db"}'


def free_port() -> int:
    with socket.socket() as s:
        s.bind(('127.0.0.1', 0))
        return s.getsockname()[1]


def clean_env(**extra: str) -> dict[str, str]:
    """NiceGUI treats PYTEST_* variables as its own test mode: an app process must not inherit them."""
    env = {k: v for k, v in os.environ.items() if not k.startswith(('PYTEST_', 'NICEGUI_'))}
    env.update(extra)
    return env


@contextmanager
def running_app(data_dir: Path, *, log: Path | None = None, start_timeout: float = 60,
                **env: str) -> Iterator[AppServer]:
    port = free_port()
    data_dir.mkdir(parents=True, exist_ok=True)
    log = log or data_dir / 'app.log'
    log_file = open(log, 'w')
    process = subprocess.Popen(
        [sys.executable, str(ROOT / 'main.py')], cwd=ROOT, stdout=log_file, stderr=subprocess.STDOUT,
        env=clean_env(AGOR_DATA_DIR=str(data_dir), AGOR_PORT=str(port), AGOR_HOST='127.0.0.1', **env))
    server = AppServer(url=f'http://127.0.0.1:{port}', data_dir=data_dir, process=process, env=env, log=log)
    try:
        _wait_until_up(server, start_timeout)
        yield server
    finally:
        process.terminate()
        try:
            process.wait(10)
        except subprocess.TimeoutExpired:
            process.kill()
        log_file.close()


def _wait_until_up(server: AppServer, timeout: float = 60) -> None:  # a loaded CI machine takes 20-30 s
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if server.process.poll() is not None:
            raise RuntimeError(f'the app exited early: {server.log.read_text()[-2000:] if server.log else ""}')
        try:
            if httpx.get(f'{server.url}/healthz', timeout=1).status_code == 200:
                return
        except httpx.HTTPError:
            pass
        time.sleep(0.1)
    raise RuntimeError('the app did not come up in time')


def login_cookie(server: AppServer, user_id: str | None) -> str:
    """The signed session cookie of a new browser logged in as `user_id` (None: a browser logged in as nobody),
    without the login form: what the login flow leaves (a live server-side login in `agor.logins`, its token in
    NiceGUI's user storage under a new browser id, the cookie naming that id), so every page and action checks it as
    a real login. Needs `db.init` first."""
    from agor import logins
    from components.act import LOGIN
    browser_id = str(uuid.uuid4())
    stored = {LOGIN: logins.open_login(user_id)} if user_id else {}
    if server.env.get('REDIS_URL'):  # main.py's NICEGUI_REDIS_KEY_PREFIX
        import redis
        with redis.Redis.from_url(server.env['REDIS_URL']) as client:
            client.set(f'agor:nicegui:user-{browser_id}', json.dumps(stored))
    else:
        storage = server.data_dir / 'sessions'  # main.py's NICEGUI_STORAGE_PATH
        storage.mkdir(parents=True, exist_ok=True)
        (storage / f'storage-user-{browser_id}.json').write_text(json.dumps(stored))
    signer = itsdangerous.TimestampSigner((server.data_dir / 'session_secret').read_text().strip())
    return signer.sign(b64encode(json.dumps({'id': browser_id}).encode())).decode()


def log_in(page, server: AppServer, email: str, password: str) -> None:
    page.goto(f'{server.url}/login')
    page.get_by_label('Email').fill(email)
    page.get_by_label('Password').fill(password)
    page.get_by_role('button', name='Log in').click()
    page.wait_for_url(f'{server.url}/')


def open_page(browser, server: AppServer, email: str, password: str, path: str, *, selector: str = '.agor-canvas',
              width: int = 1200, frames: list[str] | None = None):
    """A new browser context (its own cookies: its own user) logged in and on `path` once `selector` shows; with
    `frames`, every websocket message it receives is kept."""
    page = browser.new_context(viewport={'width': width, 'height': 700}).new_page()
    if frames is not None:
        page.on('websocket', lambda ws: ws.on('framereceived', lambda payload: frames.append(str(payload))))
    log_in(page, server, email, password)
    page.goto(f'{server.url}{path}')
    page.wait_for_selector(selector)
    return page


def open_board(browser, server: AppServer, email: str, password: str, slug: str, **options: Any):
    """`open_page` on the board."""
    return open_page(browser, server, email, password, f'/b/{slug}', **options)
