"""Two app processes behind one PostgreSQL and one Redis (docs/deployment.md): what one user does on process 1
reaches a user on process 2, a prompt typed on the process that runs no agents runs on the one that does, the session
watchdog ticks once per interval across the cluster, and a killed process's viewers leave the others' boards; while
Redis is down each process serves its own pages, which re-read once it is back; docs/deployment.md's nginx example
runs as written in front of the two processes."""
from __future__ import annotations

import asyncio
import contextlib
import json
import re
import shutil
import subprocess
import tempfile
import threading
import time
from pathlib import Path
from types import SimpleNamespace

import httpx
import pytest
import redis
from playwright.sync_api import expect

from agor import agent_sessions, db
from agor.config import load_settings
from agor.models import Role, SessionTurn
from agor.scheduler import WATCHDOG_SECONDS

from .app_server import free_port, log_in, login_cookie, running_app
from .conftest import PASSWORD, seed_board
from .servers import INITDB, REDIS_SERVER, redis_server, serving
from .ws_client import WsPage

pytestmark = [pytest.mark.postgres,
              pytest.mark.skipif(not INITDB, reason='PostgreSQL is not installed: /usr/lib/postgresql/*/bin/initdb'),
              pytest.mark.skipif(not REDIS_SERVER, reason='redis-server is not installed (scripts/test installs it)')]
PROMPT_BOX = 'Prompt… (Ctrl+Enter to send; queued while a run is going)'


CALL = re.compile(r'^(?:return runMethod\(\d+, |agorPresence\()"(\w+)", (.*)\)$', re.DOTALL)


def patches(page: WsPage, method: str) -> list[list]:
    """The arguments of every `method` the server called on the page's elements (canvas `apply`) or its presence layer
    (`patch`; a `reset`, the whole board, counts as a patch that removes nobody)."""
    calls = [(call.group(1), json.loads(call.group(2))) for call in map(CALL.match, page.scripts) if call]
    return [args if name == method else [args[0], []] for name, args in calls
            if name == method or (method, name) == ('patch', 'reset')]


def cursor_of(page: WsPage, conn: str) -> list[dict]:
    return [peer for changed, _gone in patches(page, 'patch') for peer in changed if peer['conn'] == conn]


def left(page: WsPage, conn: str) -> bool:
    return any(conn in gone for _changed, gone in patches(page, 'patch'))


def read(fn):
    with db.read() as session:
        return fn(session)


def watchdog_ticks(url: str, seconds: float) -> int:
    """How often the watchdog's cluster lock was taken in `seconds` (each tick sets it afresh, with a new expiry)."""
    ticks, last = 0, None
    with redis.Redis.from_url(url) as client:
        deadline = time.monotonic() + seconds
        while time.monotonic() < deadline:
            ttl = client.pttl('agor:job:session-watchdog')
            if ttl > 0 and (last is None or ttl > last):
                ticks += 1
            last = ttl
            time.sleep(0.05)
    return ticks


@pytest.fixture
def cluster(tmp_path, git_repo, postgres_url, redis_url):
    """Process 1 runs agents (AGOR_RUNNER=1), process 2 does not; one data dir (the session secret, worktrees)."""
    data = tmp_path / 'data'
    env = {'DATABASE_URL': postgres_url, 'REDIS_URL': redis_url, 'AGOR_TRUSTED_PROXIES': '127.0.0.1'}  # nginx's
    with running_app(data, log=tmp_path / 'app1.log', AGOR_RUNNER='1', **env) as first:
        db.init(postgres_url)
        team = seed_board(load_settings(data_dir=str(data)), git_repo, bob=Role.member)
        with running_app(data, log=tmp_path / 'app2.log', AGOR_RUNNER='0', **env) as second:
            yield first, second, team
    db.engine().dispose()


async def test_two_processes_serve_one_board(cluster, redis_url):
    first, second, team = cluster
    bob = team.users['bob']
    session = await asyncio.to_thread(agent_sessions.create, bob, team.worktree.id, 'shell')
    slug = f'/b/{team.board.slug}'
    async with httpx.AsyncClient(timeout=30) as http:
        a = await WsPage(first, await asyncio.to_thread(login_cookie, first, team.owner.id)).open(http, slug)
        b = await WsPage(second, await asyncio.to_thread(login_cookie, second, bob.id)).open(http, slug)

        # A's cursor reaches B (process 2) through Redis
        await a.fire(a.one(event='pointer'), 'pointer', {'x': 321, 'y': 54, 't': 1, 'label': ''})
        await b.wait_for(lambda: any(peer.get('x') == 321 for peer in cursor_of(b, a.client_id)))

        # A's card move
        await a.fire(a.one(event='card_move'), 'card_move', {'id': team.worktree.id, 'x': 40, 'y': 140})
        await b.wait_for(lambda: any(event.get('type') == 'card' and event['card']['id'] == team.worktree.id
                                     and event['card']['x'] == 40 for [event] in patches(b, 'apply')))

        # A's comment on the canvas: B's canvas hears the thread
        editor = await a.opened(lambda: a.fire(a.one(event='comment_at'), 'comment_at', {'x': -300, 'y': -300}),
                                tag='nicegui-comment_editor')
        await a.fire(editor, 'submit', {'text': 'hello from process one'})
        await b.wait_for(lambda: 'hello from process one' in json.dumps(b.elements) + ''.join(b.scripts))

        # B's prompt on process 2 (no runner) runs on process 1 (the shell's parent) and its output reaches B
        await b.opened(lambda: b.fire(b.one(event='session_click'), 'session_click', {'id': session.id}),
                       prop=('placeholder', PROMPT_BOX))
        await b.fire(b.one(prop=('placeholder', PROMPT_BOX)), 'update:value', 'echo cluster-$((6*7)) run-by-$PPID')
        await b.fire(b.one(label='Send', tag='q-btn'), 'click')
        await b.wait_for(lambda: 'cluster-42' in json.dumps(b.elements) + ''.join(b.scripts), timeout=30)

        def turn_status() -> str:
            return read(lambda s: s.query(SessionTurn).filter_by(session_id=session.id).one().status)
        await b.wait_for(lambda: turn_status() != 'running', timeout=30)
        assert turn_status() == 'completed'
        output = await asyncio.to_thread(lambda: ' '.join(
            e['text'] for e in agent_sessions.transcript(bob, session.id) if e['kind'] == 'assistant'))
        assert f'run-by-{first.process.pid}' in output  # the runner's child, not process 2's

        # terminals live on the runner: process 2 points there, the runner serves them under the balancer's prefix
        terminal = f'/w/{team.worktree.id}/terminal'
        assert f'/runner{terminal}' in (await b.load(http, terminal)).text
        behind = await http.get(f'{first.url}{terminal}', cookies={'session': a.cookie},
                                headers={'X-Forwarded-Prefix': '/runner'})
        assert behind.status_code == 200 and '"/runner/_nicegui/' in behind.text  # its assets and socket too
        assert 'terminal-page-error' not in behind.text

        # the watchdog: one tick per interval across the cluster
        ticks = await asyncio.to_thread(watchdog_ticks, redis_url, 3 * WATCHDOG_SECONDS + 0.5)
        assert 2 <= ticks <= 4

        # process 1 dies: A leaves B's board within 10 s, and B goes on working through process 2
        first.process.kill()
        started = time.monotonic()
        await b.wait_for(lambda: left(b, a.client_id), timeout=12)
        assert time.monotonic() - started <= 10
        await b.fire(b.one(event='card_move'), 'card_move', {'id': team.worktree.id, 'x': 80, 'y': 140})
        await b.wait_for(lambda: any(event.get('type') == 'card' and event['card']['x'] == 80
                                     for [event] in patches(b, 'apply')))
        await b.close()


async def test_while_redis_is_down_each_process_serves_its_own_and_pages_re_read_once_it_is_back(
        tmp_path, git_repo, postgres_url):
    """Redis stops under a running cluster: A's card move still reaches A (same process), each process warns once;
    Redis restarts: the pages built before reload (they may have missed events), and events flow between the
    processes again."""
    port = free_port()
    outage = contextlib.ExitStack()
    url = outage.enter_context(redis_server(port))
    data = tmp_path / 'data'
    env = {'DATABASE_URL': postgres_url, 'REDIS_URL': url}
    slug = ''
    try:
        with running_app(data, log=tmp_path / 'app1.log', AGOR_RUNNER='1', **env) as first:
            db.init(postgres_url)
            team = seed_board(load_settings(data_dir=str(data)), git_repo, bob=Role.member)
            slug, card = f'/b/{team.board.slug}', team.worktree.id
            with running_app(data, log=tmp_path / 'app2.log', AGOR_RUNNER='0', **env) as second:
                async with httpx.AsyncClient(timeout=30) as http:
                    a_cookie = await asyncio.to_thread(login_cookie, first, team.owner.id)
                    b_cookie = await asyncio.to_thread(login_cookie, second, team.users['bob'].id)
                    a = await WsPage(first, a_cookie).open(http, slug)
                    b = await WsPage(second, b_cookie).open(http, slug)

                    outage.close()  # Redis stops
                    await a.fire(a.one(event='card_move'), 'card_move', {'id': card, 'x': 40, 'y': 140})
                    await a.wait_for(lambda: card_x(a, card) == 40)  # A's own process still serves A
                    for server in (first, second):
                        await a.wait_for(lambda server=server: 'Redis unreachable' in server.log.read_text())

                    with redis_server(port):
                        for page in (a, b):  # both pages were built before Redis came back: they re-read
                            await page.wait_for(lambda page=page: 'history.go(0)' in page.scripts, timeout=20)
                        assert card_x(b, card) is None  # B never got the move of the outage as an event
                        b2 = await WsPage(second, b_cookie).open(http, slug)
                        assert page_card_x(b2, card) == 40  # the reloaded page shows it
                        a2 = await WsPage(first, a_cookie).open(http, slug)
                        await a2.fire(a2.one(event='card_move'), 'card_move', {'id': card, 'x': 80, 'y': 140})
                        await b2.wait_for(lambda: card_x(b2, card) == 80)  # through Redis again
                        assert 'history.go(0)' not in ''.join(b2.scripts)  # built after: no second reload
                        for page in (a, b, a2, b2):
                            await page.close()
                        for server in (first, second):
                            log = server.log.read_text()
                            assert log.count('Redis unreachable') == 1 and 'Redis reachable again' in log
    finally:
        outage.close()
        db.engine().dispose()


def page_card_x(page: WsPage, card_id: str) -> float:
    """Where the card is in the page as it was built (the canvas's `cards`)."""
    return next(card['x'] for element in page.elements.values()
                for card in element.get('props', {}).get('cards', ()) if card['id'] == card_id)


def card_x(page: WsPage, card_id: str) -> float | None:
    """Where the last canvas `apply` the page got put the card (None: no event about it)."""
    moves = [event['card']['x'] for [event] in patches(page, 'apply')
             if event.get('type') == 'card' and event['card']['id'] == card_id]
    return moves[-1] if moves else None


def test_the_redis_bus_delivers_every_event_to_every_process_in_one_order(redis_url):
    from agor.redis_bus import RedisEventBus
    first, second = RedisEventBus(redis_url), RedisEventBus(redis_url)
    heard: dict[str, list] = {'first': [], 'second': []}
    got_all = threading.Event()

    def hear(name: str):
        def callback(payload: dict) -> None:
            heard[name].append(payload['id'])
            if all(len(ids) == 20 for ids in heard.values()):
                got_all.set()
        return callback
    try:
        first.subscribe('board:1', hear('first'))
        second.subscribe('board:1', hear('second'))
        with pytest.raises(TypeError):  # a payload that is not plain JSON fails its publisher, not the listeners
            first.publish('board:1', {'type': 'card_removed', 'id': object(), 'by': 'x'})
        redis.Redis.from_url(redis_url).publish('agor:events', b'not json')  # dropped, the listener goes on
        for i in range(10):
            first.publish('board:1', {'type': 'card_removed', 'id': f'a{i}', 'by': 'x'})
            second.publish('board:1', {'type': 'card_removed', 'id': f'b{i}', 'by': 'x'})
        assert got_all.wait(10), heard
        assert heard['first'] == heard['second']
        assert [i for i in heard['first'] if i.startswith('a')] == [f'a{i}' for i in range(10)]
    finally:
        first.close()
        second.close()


def test_while_redis_is_down_a_process_serves_its_own_and_once_back_every_process_re_reads(caplog):
    """Redis stops (nothing kept): each process still delivers what it publishes to its own subscribers, says so once
    in its log, and when Redis is back tells the cluster to re-read (`resync`); events flow between them again."""
    from agor.events import INSTANCE_TOPIC
    from agor.redis_bus import RETRY_SECONDS, RedisEventBus
    port = free_port()
    heard: dict[str, list] = {'first': [], 'second': []}

    def hear(name: str):
        return lambda payload: heard[name].append(payload.get('id') or payload['type'])

    def wait_until(check, what: str) -> None:
        deadline = time.monotonic() + 20
        while not check():
            assert time.monotonic() < deadline, f'{what}: {heard}'
            time.sleep(0.05)
    with redis_server(port) as url:
        first, second = RedisEventBus(url), RedisEventBus(url)
    try:
        for name, bus in (('first', first), ('second', second)):
            bus.subscribe('board:1', hear(name))
            bus.subscribe(INSTANCE_TOPIC, hear(name))
        first.publish('board:1', {'type': 'card_removed', 'id': 'during', 'by': 'x'})
        wait_until(lambda: 'during' in heard['first'], 'not delivered to its own process while Redis is down')
        time.sleep(3 * RETRY_SECONDS)  # both keep trying meanwhile
        lost = [r.getMessage() for r in caplog.records if r.getMessage().startswith('Redis unreachable')]
        assert len(lost) == 2, lost  # one warning per process, however long it lasts
        with redis_server(port):
            wait_until(lambda: all(ids.count('resync') == 2 for ids in heard.values()), 'no resync from both')
            first.publish('board:1', {'type': 'card_removed', 'id': 'after', 'by': 'x'})
            wait_until(lambda: all('after' in ids for ids in heard.values()), 'not heard after Redis came back')
        assert 'during' not in heard['second']  # not sent late: the resync made its pages re-read instead
    finally:
        first.close()
        second.close()


def test_a_busy_publisher_that_timed_out_asks_redis_again_and_the_cluster_re_reads(redis_url):
    """Redis holds every PUBLISH past the send timeout while the listeners stay connected (CLIENT PAUSE WRITE), and
    the process keeps publishing as open pages do: once Redis answers again the publisher notices by itself, without
    a quiet second, and the cluster re-reads."""
    from agor.events import INSTANCE_TOPIC
    from agor.redis_bus import RETRY_SECONDS, SEND_TIMEOUT, RedisEventBus
    first, second = RedisEventBus(redis_url), RedisEventBus(redis_url)
    resyncs: list[dict] = []
    second.subscribe(INSTANCE_TOPIC, resyncs.append)
    redis.Redis.from_url(redis_url).client_pause(int((SEND_TIMEOUT + 1) * 1000), all=False)
    try:
        deadline = time.monotonic() + SEND_TIMEOUT + 15
        while not resyncs:
            assert time.monotonic() < deadline, 'the publisher never noticed that Redis answers again'
            first.publish('board:1', {'type': 'card_removed', 'id': 'busy', 'by': 'x'})
            time.sleep(RETRY_SECONDS / 5)
        assert resyncs[0]['type'] == 'resync'
    finally:
        first.close()
        second.close()


# ---- docs/deployment.md's nginx example in front of the cluster ------------------------------------------------------

NGINX = shutil.which('nginx') or ('/usr/sbin/nginx' if Path('/usr/sbin/nginx').exists() else '')


def nginx_config(port: int, app_ports: list[int], root: Path) -> str:
    """The example of docs/deployment.md as written, on loopback over plain HTTP (no TLS, so no Secure cookie) and
    in front of this test's two processes instead of three on 8081-8083."""
    text = (Path(__file__).resolve().parent.parent / 'docs' / 'deployment.md').read_text()
    block = text.split('```nginx\n', 1)[1].split('```', 1)[0]
    edits = [('listen 443 ssl;', f'listen 127.0.0.1:{port};'), (' Secure;', ''),
             ('server 127.0.0.1:8081;', f'server 127.0.0.1:{app_ports[0]};'),
             ('server 127.0.0.1:8082;', f'server 127.0.0.1:{app_ports[1]};'),
             ('server 127.0.0.1:8083;', f'server 127.0.0.1:{app_ports[1]} down;')]
    for old, new in edits:
        assert old in block, f'docs/deployment.md no longer has {old!r}: update this test'
        block = block.replace(old, new)
    return (f'daemon off; pid {root}/nginx.pid; error_log {root}/error.log warn;\n'
            f'events {{}}\nhttp {{\naccess_log off; client_body_temp_path {root}/body; proxy_temp_path {root}/proxy;\n'
            f'{block}}}\n')


@contextlib.contextmanager
def nginx(app_ports: list[int]):
    root = Path(tempfile.mkdtemp(prefix='agor-nginx-'))
    root.chmod(0o777)  # nginx's workers run as nobody when the tests run as root
    port = free_port()
    (root / 'nginx.conf').write_text(nginx_config(port, app_ports, root))
    process = subprocess.Popen([NGINX, '-p', str(root), '-c', str(root / 'nginx.conf')],
                               stdout=subprocess.DEVNULL, stderr=subprocess.PIPE, text=True)
    url = f'http://localhost:{port}'
    with serving(process, root, lambda: httpx.get(f'{url}/healthz', timeout=2).raise_for_status(), 'nginx'):
        yield url


def route_to(url: str, cookie: str, terminal: str, runner: bool) -> str:
    """An `agor_route` value that nginx's hash sends to the runner (process 1) or to process 2: process 2 answers a
    terminal page with a pointer to /runner."""
    for i in range(100):
        page = httpx.get(f'{url}{terminal}', cookies={'session': cookie, 'agor_route': f'r{i}'}, timeout=30).text
        if ('/runner' + terminal in page) != runner:
            return f'r{i}'
    raise AssertionError('nginx sent every route to one process')


@pytest.mark.browser
def test_the_nginx_example_serves_two_browsers_on_two_processes_and_the_runner_s_terminal(cluster, browser):
    first, second, team = cluster
    app_ports = [int(server.url.rsplit(':', 1)[1]) for server in (first, second)]
    terminal = f'/w/{team.worktree.id}/terminal'
    with nginx(app_ports) as url:
        cookie = login_cookie(first, team.owner.id)
        routes = {'alice': route_to(url, cookie, terminal, True), 'bob': route_to(url, cookie, terminal, False)}
        pages = {}
        for who, route in routes.items():
            context = browser.new_context(viewport={'width': 1200, 'height': 700})
            context.add_cookies([{'name': 'agor_route', 'value': route, 'url': url}])
            page = context.new_page()
            log_in(page, SimpleNamespace(url=url), f'{who}@example.com', PASSWORD)
            page.goto(f'{url}/b/{team.board.slug}')
            page.wait_for_selector('.agor-canvas')
            pages[who] = page
        alice, bob = pages['alice'], pages['bob']
        card = f'.agor-card[data-card-id="{team.worktree.id}"]'
        box = alice.locator(card).bounding_box()
        alice.mouse.move(box['x'] + 20, box['y'] + 30)
        alice.mouse.move(box['x'] + 24, box['y'] + 34)
        expect(bob.locator(f'.agor-cursor[data-user-id="{team.owner.id}"]')).to_contain_text('Alice')
        start = bob.locator(card).bounding_box()
        alice.mouse.down()
        alice.mouse.move(box['x'] + 140, box['y'] + 90, steps=4)
        alice.mouse.up()
        bob.wait_for_function('([sel, x]) => document.querySelector(sel).getBoundingClientRect().x > x + 40',
                              arg=[card, start['x']], timeout=10_000)
        bob.goto(f'{url}{terminal}')  # Bob's process sends him to the runner's terminal page under /runner ...
        bob.get_by_text('Open the terminal there').click()
        bob.wait_for_url(f'{url}/runner{terminal}')
        bob.wait_for_function('window.socket && window.socket.connected', timeout=15_000)  # ... websocket included
        alice.context.close()
        bob.context.close()
