"""What the benchmarks share: the app's users and a repository to seed from, logged-in browsers without the login
form, real Chromium, a simulated NiceGUI browser on a raw websocket, and process figures.

Logging in through the form costs a page load, a websocket and an argon2 hash per browser: for 60 viewers on a
loaded machine that is minutes of work that no benchmark measures. `tests.app_server.login_cookie` gives a browser
what the login flow leaves it, so every page and action still checks the login as for a real one.
"""
from __future__ import annotations

import asyncio
import json
import math
import os
import re
import subprocess
import urllib.parse
from pathlib import Path
from typing import Any

import httpx
import websockets

from agor import auth
from agor.models import Role, User
from tests.app_server import CHROMIUM, CHROMIUM_ARGS, AppServer, login_cookie
from tests.ws_client import socket_query

PASSWORD = 'correct-horse'
START_SECONDS = 300  # how long the app may take to start: on a shared, loaded machine more than the tests' 60 s
VIEWPORT = {'width': 1300, 'height': 800}
ACK_SECONDS = 3.0  # how often NiceGUI's browser client acknowledges what it received (nicegui.js `ack`)


# ---- a card drag, as its viewers see it -------------------------------------------------------------------------------
# A dragged card is live for teammates, so the drop may change nothing on their screens: the card is already where it
# was dropped. A drag's latency is therefore from the dragger's last pointermove to a viewer first showing the card at
# the dragger's final position (not to the first change after the pointerup, which may never come). `await`/call
# `page.evaluate(DRAGGER_JS)` on the dragger, `page.evaluate(VIEWER_JS, card)` on each viewer; after the drop,
# `dragger.evaluate(DROPPED_JS, card)` gives the argument for `viewer.wait_for_function(SEEN_JS, arg=...)`, whose value
# is `{'ms': latency}`.
DRAGGER_JS = """() => {
    window.__drag = {down: 0, moved: 0};
    addEventListener('pointerdown', () => { window.__drag.down = Date.now(); }, true);
    addEventListener('pointermove', () => { window.__drag.moved = Date.now(); }, true);
}"""
VIEWER_JS = """card => {
    const element = document.querySelector(card);
    window.__seen = [];
    new MutationObserver(() => window.__seen.push([Date.now(), element.style.transform]))
        .observe(element, {attributes: true, attributeFilter: ['style']});
}"""
DROPPED_JS = "card => [window.__drag.down, window.__drag.moved, document.querySelector(card).style.transform]"
SEEN_JS = """([down, moved, where]) => {
    const seen = (window.__seen || []).find(([at, transform]) => at >= down && transform === where);
    return seen ? {ms: seen[0] - moved} : null;
}"""


# ---- seeding --------------------------------------------------------------------------------------------------------

def create_members(owner: User, count: int, prefix: str = 'viewer') -> list[User]:
    """`count` members, <prefix>01@example.com on, all with PASSWORD."""
    return [auth.create_user(owner, f'{prefix}{i:02d}@example.com', f'{prefix.title()} {i:02d}', PASSWORD,
                             Role.member) for i in range(1, count + 1)]


def git_source(path: Path) -> Path:
    """A git repository at `path` on branch main with one (empty) commit, to register and make worktrees of."""
    path.mkdir(parents=True)
    for command in (['init', '-q', '-b', 'main'], ['-c', 'user.name=B', '-c', 'user.email=b@example.com', 'commit',
                                                   '-q', '--allow-empty', '-m', 'start']):
        subprocess.run(['git', *command], cwd=path, check=True, capture_output=True)
    return path


# ---- logged-in browsers ---------------------------------------------------------------------------------------------

def browser_cookies(server: AppServer, user_id: str) -> list[dict[str, str]]:
    """For Playwright's `context.add_cookies`: that context is a browser logged in as `user_id`."""
    return [{'name': 'session', 'value': login_cookie(server, user_id), 'url': server.url}]


def logged_in_page(browser: Any, server: AppServer, user_id: str) -> Any:
    """(Sync API) a new browser context, its own cookies, logged in as the user: a blank page."""
    context = browser.new_context(viewport=VIEWPORT)
    context.add_cookies(browser_cookies(server, user_id))
    return context.new_page()


def launch_chromium(playwright: Any) -> Any:
    """Debian's headless Chromium (sync API: the browser; async API: an awaitable of it)."""
    return playwright.chromium.launch(executable_path=CHROMIUM, args=CHROMIUM_ARGS)


# ---- a simulated browser tab ----------------------------------------------------------------------------------------

class SocketTab:
    """A browser tab without a browser: NiceGUI's real page load and socket.io handshake (engine.io 4) on a raw
    websocket, so the client costs little next to the server. It answers pings and acknowledges what it received
    every ACK_SECONDS as NiceGUI's browser client does (until then the server keeps messages for replay after a
    reconnect). Subclasses read the messages in `on_message`."""

    def __init__(self, server: AppServer, user_id: str) -> None:
        self.server, self.user_id = server, user_id
        self.cookie = login_cookie(server, user_id)  # a browser logged in as the user
        self.next_message_id = 0

    async def load(self, http: httpx.AsyncClient, path: str) -> httpx.Response:
        """The page request."""
        return await http.get(self.server.url + path, cookies={'session': self.cookie})

    async def connect(self, html: str) -> None:
        query = socket_query(html)
        self.client_id = query['client_id']
        query.update(EIO='4', transport='websocket')
        url = self.server.url.replace('http://', 'ws://') + '/_nicegui_ws/socket.io/?' + urllib.parse.urlencode(query)
        self.ws = await websockets.connect(url, origin=self.server.url, max_size=None,
                                           additional_headers={'Cookie': f'session={self.cookie}'})
        assert (await self.ws.recv()).startswith('0')  # engine.io open
        await self.ws.send('40')  # socket.io connect; NiceGUI handshakes implicitly from the query
        assert (await self.ws.recv()).startswith('40')
        self.reader = asyncio.ensure_future(self._read())
        self.acker = asyncio.ensure_future(self._ack_every(ACK_SECONDS))

    async def open(self, http: httpx.AsyncClient, path: str) -> None:
        await self.connect((await self.load(http, path)).text)

    async def emit(self, event: str, data: Any) -> None:
        await self.ws.send('42' + json.dumps([event, data]))

    async def close(self) -> None:
        await self.ws.close()
        self.reader.cancel()
        self.acker.cancel()

    async def on_message(self, kind: str, data: Any, message: str) -> None:
        """A socket.io event from the server: its name, its data, and the message as it came."""

    async def _ack_every(self, seconds: float) -> None:
        acked = 0
        while True:
            await asyncio.sleep(seconds)
            if self.next_message_id > acked:
                acked = self.next_message_id
                await self.emit('ack', {'client_id': self.client_id, 'next_message_id': acked})

    async def _read(self) -> None:
        async for message in self.ws:
            if message == '2':
                await self.ws.send('3')  # engine.io pong
            elif message.startswith('42'):
                kind, data = json.loads(message[2:])
                if isinstance(data, dict):
                    self.next_message_id = max(self.next_message_id, data.get('_id', -1) + 1)
                await self.on_message(kind, data, message)


# ---- figures --------------------------------------------------------------------------------------------------------

def cpu_seconds(pid: int) -> float:
    """User + system CPU time of a process so far."""
    fields = Path(f'/proc/{pid}/stat').read_text().rsplit(')', 1)[1].split()
    return (int(fields[11]) + int(fields[12])) / os.sysconf('SC_CLK_TCK')


def rss_mb(pid: int) -> float:
    return int(re.search(r'VmRSS:\s+(\d+)', Path(f'/proc/{pid}/status').read_text()).group(1)) / 1024


def pct(values: list[float], q: float) -> float:
    """The q-quantile (0 < q <= 1) by the nearest-rank method."""
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, math.ceil(q * len(ordered)) - 1)]


def load_average() -> str:
    return ' '.join(Path('/proc/loadavg').read_text().split()[:3])


def log_problems(log: Path) -> list[str]:
    """The app log's warning and error lines, each with the traceback that follows it."""
    lines = log.read_text(errors='replace').splitlines() if log.exists() else []
    problems, in_traceback = [], False
    for line in lines:
        starts = bool(re.match(r'\d{4}-\d\d-\d\d ', line))  # a new log record
        if starts:
            in_traceback = bool(re.search(r' (ERROR|WARNING|CRITICAL) ', line))
        if in_traceback or (not starts and problems and re.search(r'Traceback|Error|Exception', line)):
            problems.append(line)
    return problems
