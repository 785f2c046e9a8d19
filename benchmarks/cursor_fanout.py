"""Live-cursor fan-out: N simulated clients (real NiceGUI socket.io handshake) on one board.

Run from the project root: `.venv/bin/python -m benchmarks.cursor_fanout [--sizes 10,25,50,100] [--seconds 8]
[--processes 1,2]`. Per N: an idle baseline (connected, heartbeats only), then every client moves its cursor at
10 Hz; reports send-to-receipt latency at the other clients, server CPU (% of one core, all app processes together)
and bytes received per client per second. `--processes 2` runs a cluster (docs/deployment.md): a private PostgreSQL
and Redis, two app processes, the clients split between them, so half of every client's peers reach it through Redis
(their p95 is reported on its own); `--processes 1,2` measures one process first, in the same run, as the baseline.
"""
from __future__ import annotations

import argparse
import asyncio
import json
import os
import shlex
import statistics
import sys
import tempfile
import time
from pathlib import Path

import httpx
import socketio

from agor import auth, boards, db
from benchmarks.harness import (
    PASSWORD,
    START_SECONDS,
    cpu_seconds,
    create_members,
    load_average,
    log_problems,
    login_cookie,
)
from tests.app_server import AppServer, running_app
from tests.servers import postgres_server, redis_server
from tests.ws_client import ELEMENTS, connect_page

TARGETS = {25: (50.0, 25.0), 100: (150.0, 50.0)}  # N: (p95 ms, CPU %), issue 15
CLUSTER_TARGETS = {50: (100.0, 100.0)}  # two processes through Redis: N: (p95 ms, CPU % of both), issue 21
PUSHES = ('agorPresence("patch", ', 'agorPresence("reset", ')  # what changed / everyone: (method, [changed, ...])


class Sim:
    def __init__(self, index: int, bench: Bench) -> None:
        self.index, self.bench = index, bench
        self.server = bench.servers[index % len(bench.servers)]  # split across the processes
        self.sio = socketio.AsyncClient(reconnection=False)
        self.bytes = 0
        self.seen: set[tuple[str, float]] = set()
        self.listen()

    def listen(self) -> None:
        self.sio.on('run_javascript', self.on_javascript)
        self.sio.on('*', self.on_other)
        self.sio.on('disconnect', self.on_disconnect)

    def on_disconnect(self, reason=None) -> None:
        self.bench.disconnects.append((round(time.perf_counter() - self.bench.t0, 1), self.index, str(reason)))

    async def open(self, http: httpx.AsyncClient, url: str, user_id: str) -> None:
        self.cookie = login_cookie(self.server, user_id)
        response = await http.get(url, cookies={'session': self.cookie})
        if response.status_code != 200:
            raise RuntimeError(f'board page: HTTP {response.status_code} {response.headers.get("location")}')
        elements = json.loads(ELEMENTS.search(response.text).group(1))
        self.canvas, self.pointer = next((id_, e['listener_id']) for id_, el in elements.items()
                                         for e in el.get('events', []) if e['type'] == 'pointer')
        self.beat = next(e['listener_id'] for e in elements[self.canvas]['events'] if e['type'] == 'beat')
        self.conn = await connect_page(self.sio, self.server, self.cookie, response.text)

    async def open_retrying(self, http: httpx.AsyncClient, url: str, user_id: str, attempts: int = 3) -> None:
        for attempt in range(attempts):
            try:
                return await self.open(http, url, user_id)
            except (socketio.exceptions.ConnectionError, httpx.HTTPError) as error:
                print(f'client {self.index}: attempt {attempt + 1} failed: {error!r}', file=sys.stderr)
                self.sio = socketio.AsyncClient(reconnection=False)
                self.listen()
                await asyncio.sleep(1)
        raise RuntimeError(f'client {self.index} could not connect')

    async def emit(self, listener: str, args: dict) -> None:
        if not self.sio.connected:
            return
        await self.sio.emit('event', {'id': int(self.canvas), 'client_id': self.conn, 'listener_id': listener,
                                      'args': [json.dumps(args)]})  # the browser sends JSON strings

    def on_other(self, event: str, data=None) -> None:
        self.bytes += len(json.dumps(data))

    def on_javascript(self, msg: dict) -> None:
        """The presence layer's `patch` (agor.presence: what changed on the board since its last push) or `reset`.
        Cheap where it can be: one process reads every client's messages, and what it spends on one delays the next
        client's receipt (a browser reads only its own); the bytes are the script's length (the rest of the message
        is a few bytes), not the message serialised again."""
        now = time.perf_counter()
        code = msg.get('code', '') if isinstance(msg, dict) else ''
        self.bytes += len(code)
        if not self.bench.measuring or not code.startswith(PUSHES):
            return
        changed = json.loads(code[code.index(', ') + 2:-1])[0]
        for peer in changed:
            key = (peer['conn'], peer.get('x'))  # a moved peer's x and what else changed
            if peer['conn'] == self.conn or key in self.seen or key not in self.bench.sent:
                continue
            self.seen.add(key)
            latency = (now - self.bench.sent[key]) * 1000
            self.bench.latencies.append(latency)
            if self.bench.process_of.get(peer['conn']) not in (None, self.server):
                self.bench.relayed.append(latency)  # the mover is on the other process: through Redis


class Bench:
    def __init__(self, servers: list[AppServer]) -> None:
        self.servers = servers
        self.sent: dict[tuple[str, float], float] = {}
        self.latencies: list[float] = []
        self.relayed: list[float] = []  # the part of `latencies` between clients of different processes
        self.process_of: dict[str, AppServer] = {}  # a client's connection id -> its process
        self.measuring = False
        self.client_cpu = 0.0
        self.disconnects: list[tuple[float, int, str]] = []
        self.t0 = time.perf_counter()


async def run_size(servers: list[AppServer], path: str, user_ids: list[str], n: int, seconds: float) -> dict:
    bench = Bench(servers)
    sims = [Sim(i, bench) for i in range(n)]
    async with httpx.AsyncClient(timeout=30) as http:
        for start in range(0, n, 10):
            await asyncio.gather(*(s.open_retrying(http, s.server.url + path, user_ids[s.index])
                                   for s in sims[start:start + 10]))
    bench.process_of = {s.conn: s.server for s in sims}
    stop = asyncio.Event()

    async def beats(sim: Sim) -> None:
        while not stop.is_set():
            await sim.emit(sim.beat, {'hidden': False, 'active': True})
            await asyncio.sleep(3)

    moving = asyncio.Event()

    async def mover(sim: Sim) -> None:
        await asyncio.sleep(sim.index * 0.1 / n)  # spread the clients over the 100 ms period
        counter, next_at = 0, time.perf_counter()
        while not stop.is_set():
            if moving.is_set():
                counter += 1
                bench.sent[(sim.conn, float(counter))] = time.perf_counter()
                await sim.emit(sim.pointer, {'x': counter, 'y': sim.index, 't': counter, 'label': ''})
            next_at += 0.1
            await asyncio.sleep(max(0.0, next_at - time.perf_counter()))

    tasks = [asyncio.create_task(f(s)) for s in sims for f in (beats, mover)]
    pids = [server.process.pid for server in servers]

    def server_cpu() -> float:
        return sum(cpu_seconds(pid) for pid in pids)

    async def window() -> tuple[float, float]:
        for s in sims:
            s.bytes = 0
        cpu0, own0, t0 = server_cpu(), cpu_seconds(os.getpid()), time.perf_counter()
        await asyncio.sleep(seconds)
        elapsed = time.perf_counter() - t0
        per_client = sum(s.bytes for s in sims) / n / elapsed
        bench.client_cpu = (cpu_seconds(os.getpid()) - own0) / elapsed * 100
        return (server_cpu() - cpu0) / elapsed * 100, per_client

    await asyncio.sleep(2)
    idle_cpu, idle_bytes = await window()
    moving.set()
    await asyncio.sleep(1.5)
    bench.measuring = True
    cpu, rx = await window()
    bench.measuring = False
    dropped = list(bench.disconnects)
    if dropped:
        print(f'N={n}: {len(dropped)} sockets dropped during the run, e.g. {dropped[:3]}', file=sys.stderr)
    stop.set()
    await asyncio.gather(*tasks)
    await asyncio.gather(*(s.sio.disconnect() for s in sims))
    q, relayed = percentiles(bench.latencies), percentiles(bench.relayed)
    return {'n': n, 'processes': len(servers), 'p50': q[49], 'p95': q[94], 'relayed_p95': relayed[94],
            'cpu': cpu, 'idle_cpu': idle_cpu, 'rx': rx,
            'idle_rx': idle_bytes, 'samples': len(bench.latencies), 'client_cpu': bench.client_cpu,
            'dropped': len(dropped)}


def percentiles(latencies: list[float]) -> list[float]:
    return statistics.quantiles(latencies, n=100) if len(latencies) >= 2 else [float('nan')] * 99


def verdict(r: dict) -> str:
    targets = TARGETS if r['processes'] == 1 else CLUSTER_TARGETS
    if r['n'] not in targets:
        return '(no target)'
    p95, cpu = targets[r['n']]
    ok = r['p95'] <= p95 and r['cpu'] <= cpu
    return f"{'PASS' if ok else 'FAIL'} (p95 <= {p95:.0f} ms, CPU <= {cpu:.0f}%)"


def measure(servers: list[AppServer], sizes: list[int], seconds: float, results: list[dict]) -> list[str]:
    """Every size on these app processes (one, or a cluster sharing one database); their logs' problems."""
    db.init(servers[0].database_url)
    owner = auth.create_first_owner('o@example.com', 'Owner', PASSWORD)
    user_ids = [user.id for user in create_members(owner, max(sizes))]
    board = boards.create_board(owner, 'Bench')
    for n in sizes:
        try:
            r = asyncio.run(run_size(servers, f'/b/{board.slug}', user_ids, n, seconds))
        except Exception as error:  # report the failed size, keep the others
            print(f'N={n}: FAILED: {error!r}', file=sys.stderr, flush=True)
            results.append({'n': n, 'processes': len(servers), 'error': repr(error)})
            continue
        print(f"{len(servers)} process(es), N={n}: p50 {r['p50']:.1f} ms, p95 {r['p95']:.1f} ms "
              f"(through Redis {r['relayed_p95']:.1f}), CPU {r['cpu']:.1f}% "
              f"(idle {r['idle_cpu']:.1f}%), {r['rx'] / 1024:.1f} KiB/s per client, {r['samples']} samples",
              file=sys.stderr, flush=True)
        results.append(r)
        time.sleep(12)  # let NiceGUI delete the disconnected clients (reconnect_timeout=10) before the next N
    db.engine().dispose()
    if os.environ.get('KEEP_LOG'):
        Path(os.environ['KEEP_LOG']).write_text(''.join(server.log.read_text() for server in servers))
    return [problem for server in servers for problem in log_problems(server.log)]


def one_process(tmp: Path, sizes: list[int], seconds: float, results: list[dict]) -> list[str]:
    with running_app(tmp / 'one', start_timeout=START_SECONDS) as server:
        return measure([server], sizes, seconds, results)


def two_processes(tmp: Path, sizes: list[int], seconds: float, results: list[dict]) -> list[str]:
    """A cluster: one data dir (the session secret), PostgreSQL and Redis; process 2 runs no agents."""
    data = tmp / 'cluster'
    with postgres_server() as database_url, redis_server() as redis_url:
        env = {'DATABASE_URL': database_url, 'REDIS_URL': redis_url}
        with running_app(data, log=tmp / 'first.log', start_timeout=START_SECONDS, AGOR_RUNNER='1', **env) as first, \
                running_app(data, log=tmp / 'second.log', start_timeout=START_SECONDS, AGOR_RUNNER='0',
                            **env) as second:
            return measure([first, second], sizes, seconds, results)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument('--sizes', default='10,25,50,100')
    parser.add_argument('--seconds', type=float, default=8)
    parser.add_argument('--processes', default='1', help='1, 2 (a cluster through Redis) or 1,2')
    args = parser.parse_args()
    sizes = [int(s) for s in args.sizes.split(',')]
    modes = {'1': one_process, '2': two_processes}
    results: list[dict] = []
    problems: list[str] = []
    load = load_average()
    with tempfile.TemporaryDirectory(prefix='agor-fanout-') as tmp:
        for mode in args.processes.split(','):
            problems += modes[mode](Path(tmp), sizes, args.seconds, results)
    print('\n| processes | N | p50 ms | p95 ms | p95 ms through Redis | server CPU % (moving) | server CPU % (idle '
          'baseline) | rx KiB/s per client | samples | bench-process CPU % | dropped sockets | target |')
    print('|---|---|---|---|---|---|---|---|---|---|---|---|')
    for r in results:
        if 'error' in r:
            print(f"| {r['processes']} | {r['n']} |" + ' - |' * 9 + f" FAIL (run error: {r['error']}) |")
            continue
        print(f"| {r['processes']} | {r['n']} | {r['p50']:.1f} | {r['p95']:.1f} | {r['relayed_p95']:.1f} | "
              f"{r['cpu']:.1f} | {r['idle_cpu']:.1f} | {r['rx'] / 1024:.1f} | {r['samples']} | {r['client_cpu']:.0f} | "
              f"{r['dropped']} | {verdict(r)} |")
    print(f'\napp logs: {len(problems)} warning/error lines' + ''.join(f'\n    {p}' for p in problems[:10]))
    command = ['.venv/bin/python', '-m', 'benchmarks.cursor_fanout', '--sizes', args.sizes, '--seconds',
               str(args.seconds), '--processes', args.processes]
    print(f'\nCommand: {shlex.join(command)}')
    print(f'Machine: {os.cpu_count()} CPUs; clients and server share them; load average {load} at the start, '
          f'{load_average()} at the end.')


if __name__ == '__main__':
    main()
