"""Board canvas benchmark: first render, server memory per viewer, drag latency, and how long the event loop stalls
while many viewers open the big board at once, each against a baseline.

Run from the project root: `.venv/bin/python -m benchmarks.board_canvas [--viewers 50] [--joiners 60] [--cards 200]`.

The mover, one drag viewer and one joiner are real Chromium pages; the other drag viewers and joiners are simulated
browsers (`harness.SocketTab`: NiceGUI's real page load and socket.io handshake, so the server does for them what it
does for a browser): 50 Chromium pages do not fit on 2 cores beside the app. A simulated viewer sees a drag when the
card's move (the canvas's `apply` of the stored card) reaches it; the Chromium viewer may see it earlier, from the
live drag in the presence layer, so the simulated viewers' figure is the stricter one.
"""
from __future__ import annotations

import argparse
import asyncio
import json
import math
import re
import shlex
import statistics
import subprocess
import sys
import tempfile
import threading
import time
from dataclasses import dataclass
from pathlib import Path

import httpx
from playwright.sync_api import Browser, Page, sync_playwright
from playwright.sync_api import TimeoutError as PlaywrightTimeout

from agor import auth, boards, db, repos
from agor.config import load_settings
from benchmarks.harness import (
    DRAGGER_JS,
    DROPPED_JS,
    PASSWORD,
    SEEN_JS,
    START_SECONDS,
    VIEWER_JS,
    SocketTab,
    create_members,
    git_source,
    launch_chromium,
    load_average,
    log_problems,
    logged_in_page,
    pct,
    rss_mb,
)
from tests.app_server import AppServer, running_app

ZONES = 10
RENDER_RUNS = 5
MEMORY_VIEWERS = 30  # the owner and 14 open first, then the growth over 15 more
DRAGS = 20
PROBE_SECONDS = 0.05  # how often the loop probe asks /healthz while viewers join
MISSED = re.compile(r'Run time of job "(?P<job>[^"]+)".* was missed by (?P<by>[0-9:.]+)')
OPENING = 5  # viewer pages that load at the same time while the drag viewers open
CARD_MOVE = re.compile(r'"type":\s*"card"')  # in the canvas's `apply` call (NiceGUI's JSON is compact)
UNSEEN_MS = 10_000.0  # a drag a viewer did not see within this long counts as this long
RENDERED = '''n => document.querySelector('.agor-canvas') && document.querySelectorAll('.agor-card').length >= n
    ? performance.now() : 0'''
# a page that is up: every card and a connected socket; or NiceGUI's page for a build that took too long
LIVE = '''n => document.body && document.body.innerText.includes('response_timeout') ? 'timed out'
    : document.querySelectorAll('.agor-card').length >= n && window.socket && window.socket.connected ? 'live' : 0'''


class CardWatcher(SocketTab):
    """A simulated browser on a board: when each of its messages applying a card (the canvas's `apply`) came."""

    def __init__(self, server: AppServer, user_id: str, card_id: str) -> None:
        super().__init__(server, user_id)
        self.card_id = card_id
        self.applied: list[float] = []  # Date.now()-style ms

    async def on_message(self, kind: str, data: dict, message: str) -> None:
        code = data.get('code', '') if kind == 'run_javascript' else ''
        if '"apply"' in code and CARD_MOVE.search(code) and self.card_id in code:
            self.applied.append(time.time() * 1000)


class SocketTabs:
    """Simulated browsers on their own event loop in a thread, driven from the (sync) benchmark."""

    def __init__(self) -> None:
        self.loop = asyncio.new_event_loop()
        self.thread = threading.Thread(target=self.loop.run_forever, daemon=True)
        self.thread.start()
        self.http = self.call(self._client())

    async def _client(self) -> httpx.AsyncClient:
        return httpx.AsyncClient(timeout=300)

    def call(self, coroutine):
        return asyncio.run_coroutine_threadsafe(coroutine, self.loop).result()

    def open(self, tabs: list[SocketTab], path: str, at_once: int) -> list[str]:
        """Open the tabs on `path`, `at_once` at a time (all at once: len(tabs)); what failed, as messages."""
        async def one(tab: SocketTab) -> str | None:
            response = await tab.load(self.http, path)
            if response.status_code != 200 or 'response_timeout' in response.text:
                return f'{path}: {response.status_code} {response.text[:80]!r}'
            await tab.connect(response.text)
            return None

        async def all_of() -> list[str]:
            failed = []
            for start in range(0, len(tabs), at_once):
                failed += [f for f in await asyncio.gather(*(one(t) for t in tabs[start:start + at_once])) if f]
            return failed
        return self.call(all_of())

    def close(self, tabs: list[SocketTab]) -> None:
        async def all_of() -> None:
            await asyncio.gather(*(t.close() for t in tabs if hasattr(t, 'ws')), return_exceptions=True)
        self.call(all_of())

    def stop(self) -> None:
        self.call(self.http.aclose())
        self.loop.call_soon_threadsafe(self.loop.stop)
        self.thread.join()


@dataclass
class Scene:
    big: str  # board slugs
    empty: str
    small: str
    card_id: str  # the one card on the small board
    owner: str  # user ids
    viewers: list[str]


def seed(server: AppServer, tmp: Path, cards: int, users: int) -> Scene:
    db.init(server.database_url)
    owner = auth.create_first_owner('alice@example.com', 'Alice', PASSWORD)
    viewers = [user.id for user in create_members(owner, users)]
    settings = load_settings(data_dir=str(server.data_dir))
    settings.repo_roots.append(tmp)
    repo = repos.register_local(settings, owner, str(git_source(tmp / 'src' / 'shop')))
    worktrees = [repos.create_worktree(settings, owner, repo.id, f'wt-{i:03d}') for i in range(cards + 1)]

    big = boards.create_board(owner, 'Big')
    per_zone = math.ceil(cards / ZONES)
    rows = math.ceil(per_zone / 3)
    height = max(700, 20 + rows * 100)
    for z in range(ZONES):
        zx, zy = (z % 5) * 1000, (z // 5) * (height + 100)
        boards.create_zone(owner, big.id, f'Zone {z + 1}', x=zx, y=zy, w=900, h=height)
        for k, wt in enumerate(worktrees[z * per_zone:min(cards, (z + 1) * per_zone)]):
            boards.place_card(owner, big.id, wt.id, zx + 20 + (k % 3) * 290, zy + 10 + (k // 3) * 100)
    empty = boards.create_board(owner, 'Empty')
    small = boards.create_board(owner, 'Small')
    boards.create_zone(owner, small.id, 'Review', x=600, y=0, w=500, h=400)
    boards.place_card(owner, small.id, worktrees[-1].id, 0, 100)
    return Scene(big.slug, empty.slug, small.slug, worktrees[-1].id, owner.id, viewers)


def show_board(page: Page, server: AppServer, slug: str, cards: int) -> float:
    """Go to the board and return performance.now() (ms since navigation start) when all cards are in the DOM."""
    page.goto(f'{server.url}/b/{slug}')
    return page.wait_for_function(RENDERED, arg=cards, polling='raf', timeout=120_000).json_value()


def open_boards(pages: list[Page], server: AppServer, slug: str, cards: int, *, at_once: int) -> int:
    """The pages go to the board, `at_once` loading at the same time; returns when each shows every card and is
    connected (the cards are in the page's HTML before its socket is up, and only a connected page gets moves). A
    page that got NiceGUI's "took longer than the response_timeout" page loads again; returns how many did."""
    timed_out = 0
    for start in range(0, len(pages), at_once):
        batch = pages[start:start + at_once]
        for page in batch:
            page.goto(f'{server.url}/b/{slug}', wait_until='commit')
        for page in batch:
            while live(page, cards) == 'timed out':
                timed_out += 1
                page.goto(f'{server.url}/b/{slug}', wait_until='commit')
    return timed_out


def live(page: Page, cards: int) -> str:
    try:
        return page.wait_for_function(LIVE, arg=cards, polling=100, timeout=300_000).json_value()
    except PlaywrightTimeout:
        text = page.evaluate('document.body ? document.body.innerText.slice(0, 300) : ""')
        raise RuntimeError(f'{page.url} not up after 300 s: {text!r}') from None


def render_times(browser: Browser, server: AppServer, owner: str, slug: str, cards: int) -> list[float]:
    page = logged_in_page(browser, server, owner)
    show_board(page, server, slug, cards)  # warm-up: browser caches and the server's first page build
    times = []
    for _ in range(RENDER_RUNS):
        page.reload()
        times.append(page.wait_for_function(RENDERED, arg=cards, polling='raf', timeout=120_000).json_value() / 1000)
    page.context.close()
    return times


def memory_per_viewer(server: AppServer, pages: list[Page], slug: str, cards: int) -> float:
    """RSS growth per extra viewer, in MB, on a fresh server process: the first half of the pages open the board and
    stay (absorbing one-time costs), then the growth while the second half opens. The pages were logged in on another
    process (the session cookie and NiceGUI's user storage outlive it), so login work and its freed heap are not in
    the way. The waits pass the 3 s in which a browser acknowledges the messages it got (kept until then for replay)."""
    warm, measured = pages[:len(pages) // 2], pages[len(pages) // 2:]
    for page in warm:
        show_board(page, server, slug, cards)
    time.sleep(4)
    before = rss_mb(server.process.pid)
    for page in measured:
        show_board(page, server, slug, cards)
    time.sleep(4)
    after = rss_mb(server.process.pid)
    for page in pages:
        page.goto('about:blank')
    return (after - before) / len(measured)


def drag_latencies(dragger: Page, viewers: list[Page], card: str,
                   watchers: list[CardWatcher] = ()) -> list[float]:
    """DRAGS real mouse drags of the card by +/-150 px; per (drag, viewer): the ms from the last move to the viewer
    showing the card where it was dropped (harness.SEEN_JS), UNSEEN_MS for a viewer that did not within that long.
    A simulated viewer (`watchers`) sees the drag when the stored move reaches it."""
    for viewer in viewers:
        viewer.evaluate(VIEWER_JS, card)
    latencies = []
    for i in range(DRAGS):
        box = dragger.locator(card).bounding_box()
        x, y = box['x'] + box['width'] / 2, box['y'] + box['height'] / 2
        dragger.mouse.move(x, y)
        dragger.mouse.down()
        dragger.mouse.move(x + (150 if i % 2 == 0 else -150), y, steps=5)
        dragger.mouse.up()
        dropped = dragger.evaluate(DROPPED_JS, card)
        for viewer in viewers:
            try:  # a page that reloaded has no __seen: it counts as not seeing the drag
                seen = viewer.wait_for_function(SEEN_JS, arg=dropped, polling=20, timeout=UNSEEN_MS)
            except PlaywrightTimeout:
                latencies.append(UNSEEN_MS)
                print(f'drag {i}: not seen by {viewer.url} within {UNSEEN_MS / 1000:g} s', file=sys.stderr)
                continue
            latencies.append(seen.json_value()['ms'])
        deadline = time.monotonic() + UNSEEN_MS / 1000
        for watcher in watchers:
            while not (after := [at for at in watcher.applied if at >= dropped[0]]) and time.monotonic() < deadline:
                time.sleep(0.01)
            if not after:
                reader = watcher.reader
                state = (f'reader ended: {reader.exception() if not reader.cancelled() else "cancelled"!r}'
                         if reader.done() else f'{watcher.next_message_id} messages so far')
                print(f'drag {i}: not seen by a simulated viewer within {UNSEEN_MS / 1000:g} s ({state})',
                      file=sys.stderr)
            latencies.append(after[0] - dropped[1] if after else UNSEEN_MS)
    return latencies


def drag_benchmark(browser: Browser, server: AppServer, scene: Scene, viewers: int,
                   tabs: SocketTabs) -> tuple[list, list]:
    """The same pipeline with 1 viewer (baseline), then with `viewers` viewers (one Chromium, the rest simulated)."""
    card = f'.agor-card[data-card-id="{scene.card_id}"]'
    dragger = logged_in_page(browser, server, scene.owner)
    show_board(dragger, server, scene.small, 1)
    dragger.evaluate(DRAGGER_JS)
    page = logged_in_page(browser, server, scene.viewers[0])
    open_boards([page], server, scene.small, 1, at_once=1)
    baseline = drag_latencies(dragger, [page], card)
    watchers = [CardWatcher(server, user, scene.card_id) for user in scene.viewers[1:viewers]]
    failed = tabs.open(watchers, f'/b/{scene.small}', OPENING)
    if failed:
        raise RuntimeError(f'{len(failed)} simulated drag viewers did not open: {failed[:3]}')
    time.sleep(2)  # their pages' first messages are out
    loaded = drag_latencies(dragger, [page], card, watchers)
    tabs.close(watchers)
    for each in (dragger, page):
        each.context.close()
    return loaded, baseline


PROBE = """
import json, signal, sys, time, httpx
url, every, samples, running = sys.argv[1], float(sys.argv[2]), [], [True]
signal.signal(signal.SIGTERM, lambda *_: running.__setitem__(0, False))
with httpx.Client(timeout=30) as client:
    while running[0]:
        started = time.monotonic()
        client.get(url)
        samples.append((time.monotonic() - started) * 1000)
        time.sleep(every)
print(json.dumps(samples))
"""


class LoopProbe:
    """Asks /healthz (answered on the app's event loop) every PROBE_SECONDS from a process of its own: the slowest
    answer is the longest the loop was busy with something else, as every page and the scheduler would feel it. (A
    thread of this process would also wait for the simulated tabs' share of its GIL.)"""

    def __init__(self, server: AppServer) -> None:
        self.url = f'{server.url}/healthz'
        self.samples: list[float] = []

    def __enter__(self) -> LoopProbe:
        self._process = subprocess.Popen([sys.executable, '-c', PROBE, self.url, str(PROBE_SECONDS)],
                                         stdout=subprocess.PIPE, text=True)
        return self

    def __exit__(self, *_: object) -> None:
        self._process.terminate()
        out, _ = self._process.communicate(timeout=60)
        self.samples = json.loads(out)


def missed_runs(log: Path, offset: int) -> list[tuple[str, float]]:
    """APScheduler's "Run time of job ... was missed by h:mm:ss" lines written after `offset`: (job, seconds late)."""
    found = []
    with open(log, errors='replace') as handle:
        handle.seek(offset)
        for match in MISSED.finditer(handle.read()):
            hours, minutes, seconds = match['by'].split(':')
            found.append((match['job'], int(hours) * 3600 + int(minutes) * 60 + float(seconds)))
    return found


def join_stall(server: AppServer, log: Path, page: Page, others: list[SocketTab], tabs: SocketTabs, slug: str,
               cards: int) -> tuple[dict, dict]:
    """All viewers open the big board at once (a Chromium page and the simulated ones, each without waiting for the
    others), then each waits until it is up: the page shows every card, a simulated one has its socket. Baseline: the
    same probe while the app is idle for as long."""
    with LoopProbe(server) as idle:
        time.sleep(3)
    offset = log.stat().st_size
    started = time.monotonic()
    with LoopProbe(server) as busy:
        page.goto(f'{server.url}/b/{slug}', wait_until='commit')
        failed = tabs.open(others, f'/b/{slug}', max(1, len(others)))
        failed += ['the Chromium page'] if live(page, cards) == 'timed out' else []
        joined = time.monotonic() - started
        time.sleep(4)  # a watchdog run due just after the last page would still be seen late
    missed = missed_runs(log, offset)
    page.goto('about:blank')
    tabs.close(others)
    return ({'probe': busy.samples, 'missed': missed, 'seconds': joined, 'failed': len(failed)},
            {'probe': idle.samples})


def row(metric: str, value: float, baseline: float, unit: str, limit: float | None) -> str:
    ratio = f'{value / baseline:.2f}x' if baseline else 'n/a'
    target = f'<= {limit:g} {unit}' if limit is not None else '-'
    verdict = '-' if limit is None else 'pass' if value <= limit else 'FAIL'
    return f'| {metric} | {value:.3f} {unit} | {baseline:.3f} {unit} | {ratio} | {target} | {verdict} |'


PARTS = ('render', 'drags', 'join', 'memory')


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument('--viewers', type=int, default=50, help='viewers watching the drags (default 50)')
    parser.add_argument('--joiners', type=int, default=60, help='viewers opening the big board at once (default 60)')
    parser.add_argument('--cards', type=int, default=200, help='cards on the big board (default 200)')
    parser.add_argument('--parts', default=','.join(PARTS), help=f'which parts to run (default all: {",".join(PARTS)})')
    args = parser.parse_args()
    parts = set(args.parts.split(','))
    if not parts or parts - set(PARTS):
        parser.error(f'--parts: a comma-separated choice of {", ".join(PARTS)}')
    rows, problems, loads = [], [], [load_average()]

    def step(name: str) -> None:
        loads.append(load_average())
        print(f'{time.strftime("%H:%M:%S")} {name} (load average {loads[-1]})', file=sys.stderr, flush=True)

    with tempfile.TemporaryDirectory() as tmp_name, sync_playwright() as playwright:
        tmp = Path(tmp_name)
        data = tmp / 'data'
        browser = launch_chromium(playwright)
        tabs = SocketTabs()
        try:
            with running_app(data, log=tmp / 'app-main.log', start_timeout=START_SECONDS) as server:
                scene = seed(server, tmp, args.cards, max(args.viewers, args.joiners, MEMORY_VIEWERS))
                if 'render' in parts:
                    step(f'seeded {args.cards + 1} worktrees; render times')
                    big = render_times(browser, server, scene.owner, scene.big, args.cards)
                    empty = render_times(browser, server, scene.owner, scene.empty, 0)
                    rows.append(row(f'first render, {args.cards} cards + {ZONES} zones, median of {RENDER_RUNS}',
                                    statistics.median(big), statistics.median(empty), 's', 1.5))
                    rows.append(row(f'first render, {args.cards} cards, max', max(big), max(empty), 's', 1.5))
                if 'drags' in parts:
                    step(f'drags seen by 1, then {args.viewers} viewers')
                    loaded, single = drag_benchmark(browser, server, scene, args.viewers, tabs)
                    for label, q, limit in (('p50', 0.5, None), ('p95', 0.95, 150), ('max', 1.0, None)):
                        rows.append(row(f'drag -> {args.viewers} viewers latency {label} ({len(loaded)} pairs; '
                                        'baseline 1 viewer)', pct(loaded, q), pct(single, q), 'ms', limit))
                if 'join' in parts:
                    step(f'{args.joiners} viewers joining at once (1 Chromium, {args.joiners - 1} simulated)')
                    joiner = logged_in_page(browser, server, scene.viewers[0])
                    others = [SocketTab(server, user) for user in scene.viewers[1:args.joiners]]
                    joined, idle = join_stall(server, tmp / 'app-main.log', joiner, others, tabs, scene.big,
                                              args.cards)
                    rows.append(row(f'event loop stall while {args.joiners} viewers open the {args.cards}-card board '
                                    '(slowest /healthz; baseline idle)', max(joined['probe']), max(idle['probe']),
                                    'ms', 1000))
                    rows.append(row(f'scheduler runs missed while {args.joiners} viewers join (baseline: allowed)',
                                    len(joined['missed']), 0, 'runs', 0))
                    rows.append(row('joiners served NiceGUI\'s response-timeout page instead of the board',
                                    joined['failed'], 0, 'pages', 0))
                if 'memory' in parts:
                    pages = [logged_in_page(browser, server, user)
                             for user in [scene.owner, *scene.viewers[:MEMORY_VIEWERS]]]
                    for page in pages:
                        page.goto('about:blank')
            if 'memory' in parts:
                memory = {}
                for name, slug, cards in (('empty', scene.empty, 0), ('big', scene.big, args.cards)):
                    step(f'memory per viewer, {name} board')
                    log = tmp / f'app-memory-{name}.log'
                    with running_app(data, log=log, start_timeout=START_SECONDS) as server:  # a fresh process each
                        memory[name] = memory_per_viewer(server, pages, slug, cards)
                rows.append(row(f'server RSS per extra viewer, {args.cards}-card board', memory['big'],
                                memory['empty'], 'MB', 1))
            step('done')
        finally:
            tabs.stop()
            browser.close()
            for log in sorted(tmp.glob('app-*.log')):
                problems += [f'{log.name}: {line}' for line in log_problems(log)]
            print('\n'.join(problems[-30:]), file=sys.stderr)

    print('| metric | value | baseline | ratio | target | result |')
    print('|---|---|---|---|---|---|')
    print('\n'.join(rows))
    if 'render' in parts:
        print(f'\nrender samples (s): {[round(t, 3) for t in big]}; empty board: {[round(t, 3) for t in empty]}')
    if 'join' in parts:
        print(f'{args.joiners} viewers joined in {joined["seconds"]:.1f} s; /healthz p50 '
              f'{pct(joined["probe"], 0.5):.0f} ms over {len(joined["probe"])} probes; missed runs: {joined["missed"]}')
    print(f'app log warnings/errors: {len(problems)}')
    for line in problems[:20]:
        print(f'  {line}')
    if 'drags' in parts:
        unseen = sum(1 for latency in loaded if latency >= UNSEEN_MS)
        print(f'drag pairs not seen within {UNSEEN_MS / 1000:g} s: {unseen} of {len(loaded)}')
    print(f'\ncommand: {shlex.join(sys.orig_argv)}')
    print(f'load average (1, 5, 15 min) at the start and after each step: {"; ".join(loads)}')


if __name__ == '__main__':
    main()
