"""`scripts/start --cluster N`: PostgreSQL, Redis and N app processes behind a small load balancer, on one machine.

For trying a cluster (docs/deployment.md), not for production (use nginx there). Everything lives under
<data dir>/cluster: the PostgreSQL data (kept between runs), the logs. Redis keeps nothing on disk (logins of open
browsers are lost when it stops). Process 1 is the runner (agents, terminals, the watchdog); the balancer listens on
AGOR_PORT (8080), sends each browser to one process (cookie `agor_route`, assigned round-robin) and `/runner/...` to
process 1 with `X-Forwarded-Prefix: /runner`. Ctrl-C stops everything.
"""
from __future__ import annotations

import argparse
import asyncio
import contextlib
import glob
import itertools
import os
import re
import shutil
import signal
import subprocess
import sys
import time
from http.cookies import SimpleCookie
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
PREFIX = '/runner'  # agor.cluster.RUNNER_PREFIX
ROUTE_COOKIE = 'agor_route'


def newest_postgres_bin() -> Path:
    found = sorted(glob.glob('/usr/lib/postgresql/*/bin/initdb'), key=lambda p: [int(n) for n in re.findall(r'\d+', p)])
    if not found:
        sys.exit('PostgreSQL is not installed (scripts/start installs the Debian package postgresql).')
    return Path(found[-1]).parent


def start_postgres(root: Path, port: int) -> tuple[str, list[str]]:
    """initdb once (as `postgres` when run as root), then start; returns its URL and how to stop it."""
    bin_dir, data = newest_postgres_bin(), root / 'postgres'
    as_postgres = ['runuser', '-u', 'postgres', '--'] if os.geteuid() == 0 else []
    root.mkdir(parents=True, exist_ok=True)
    if as_postgres:
        shutil.chown(root, 'postgres', 'postgres')
    if not data.exists():
        subprocess.run([*as_postgres, str(bin_dir / 'initdb'), '-D', str(data), '-A', 'trust', '-U', 'agor',
                        '-E', 'UTF8', '--no-locale'], check=True, capture_output=True)
    options = f'-c listen_addresses=127.0.0.1 -p {port} -k {root}'
    subprocess.run([*as_postgres, str(bin_dir / 'pg_ctl'), '-D', str(data), '-l', str(root / 'postgres.log'),
                    '-o', options, '-w', '-t', '60', 'start'], check=True)
    return f'postgresql://agor@127.0.0.1:{port}/postgres', [*as_postgres, str(bin_dir / 'pg_ctl'), '-D', str(data),
                                                             '-m', 'fast', 'stop']


def wait_http(url: str, process: subprocess.Popen, timeout: float = 90) -> None:
    import httpx
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if process.poll() is not None:
            sys.exit(f'an app process exited early; see its log ({url})')
        with contextlib.suppress(httpx.HTTPError):
            if httpx.get(f'{url}/healthz', timeout=1).status_code == 200:
                return
        time.sleep(0.2)
    sys.exit(f'{url} did not come up in time')


# ---- the balancer ------------------------------------------------------------------------------------------------

class Balancer:
    """Per connection: read the request head, pick the process (cookie, or `/runner`), rewrite the head, then pipe.
    Plain requests get `Connection: close` so that every request is routed on its own; websockets stay piped."""

    def __init__(self, ports: list[int]) -> None:
        self.ports = ports
        self.next_route = itertools.cycle(range(len(ports)))

    async def handle(self, client_reader: asyncio.StreamReader, client_writer: asyncio.StreamWriter) -> None:
        try:
            head = await client_reader.readuntil(b'\r\n\r\n')
        except (asyncio.IncompleteReadError, asyncio.LimitOverrunError, ConnectionError):
            client_writer.close()
            return
        request_line, *lines = head.decode('latin-1').split('\r\n')[:-2]
        method, target, version = (request_line.split(' ') + ['', '', ''])[:3]
        headers = [line.split(':', 1) for line in lines if ':' in line]
        names = {name.strip().lower(): value.strip() for name, value in headers}
        cookie = SimpleCookie(names.get('cookie', '')).get(ROUTE_COOKIE)
        set_route = None
        extra = [('X-Forwarded-For', client_writer.get_extra_info('peername')[0]), ('X-Forwarded-Proto', 'http')]
        if target == PREFIX or target.startswith(PREFIX + '/'):
            route, target = 0, target[len(PREFIX):] or '/'
            extra.append(('X-Forwarded-Prefix', PREFIX))
        elif cookie is not None and cookie.value.isdigit() and int(cookie.value) < len(self.ports):
            route = int(cookie.value)
        else:
            route = set_route = next(self.next_route)
        upgrade = 'upgrade' in names.get('connection', '').lower()
        dropped = {'x-forwarded-for', 'x-forwarded-proto', 'x-forwarded-prefix', *([] if upgrade else ['connection'])}
        kept = [(n, v) for n, v in headers if n.strip().lower() not in dropped]
        if not upgrade:
            kept.append(('Connection', 'close'))
        new_head = '\r\n'.join([f'{method} {target} {version}', *(f'{n}:{v}' for n, v in kept),
                                *(f'{n}: {v}' for n, v in extra)]) + '\r\n\r\n'
        try:
            up_reader, up_writer = await asyncio.open_connection('127.0.0.1', self.ports[route])
        except OSError:
            client_writer.write(b'HTTP/1.1 502 Bad Gateway\r\nContent-Length: 0\r\nConnection: close\r\n\r\n')
            client_writer.close()
            return
        up_writer.write(new_head.encode('latin-1'))
        if set_route is not None:  # the browser stays on this process from now on
            response_head = await up_reader.readuntil(b'\r\n\r\n')
            cookie_line = f'Set-Cookie: {ROUTE_COOKIE}={set_route}; Path=/; HttpOnly; SameSite=Lax\r\n'
            status_end = response_head.index(b'\r\n') + 2
            client_writer.write(response_head[:status_end] + cookie_line.encode() + response_head[status_end:])
        await asyncio.gather(self.pipe(client_reader, up_writer), self.pipe(up_reader, client_writer))

    @staticmethod
    async def pipe(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        try:
            while data := await reader.read(65536):
                writer.write(data)
                await writer.drain()
        except (ConnectionError, asyncio.IncompleteReadError):
            pass
        finally:
            with contextlib.suppress(Exception):
                writer.close()


async def serve(port: int, ports: list[int]) -> None:
    server = await asyncio.start_server(Balancer(ports).handle, '0.0.0.0', port, limit=2 ** 16)
    print(f'Agor cluster: http://localhost:{port} -> {len(ports)} processes on ports {ports} (runner: {ports[0]})',
          flush=True)
    async with server:
        await server.serve_forever()


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument('processes', type=int)
    parser.add_argument('main_args', nargs=argparse.REMAINDER, help="main.py's flags, e.g. --demo")
    args = parser.parse_args()
    if not 1 <= args.processes <= 16:
        sys.exit('--cluster takes a number of processes from 1 to 16')
    data_dir = Path(os.environ.get('AGOR_DATA_DIR', 'data')).resolve()
    port = int(os.environ.get('AGOR_PORT', '8080'))
    root = data_dir / 'cluster'
    stops: list[list[str]] = []
    processes: list[subprocess.Popen] = []
    signal.signal(signal.SIGTERM, signal.default_int_handler)  # a TERM stops everything as Ctrl-C does
    try:
        database_url, stop_postgres = start_postgres(root, port + 100)
        stops.append(stop_postgres)
        redis_port = port + 101
        processes.append(subprocess.Popen(['redis-server', '--bind', '127.0.0.1', '--port', str(redis_port),
                                           '--save', '', '--appendonly', 'no'], stdout=subprocess.DEVNULL))
        ports = [port + 1 + i for i in range(args.processes)]
        for i, app_port in enumerate(ports):
            env = {**os.environ, 'DATABASE_URL': database_url, 'REDIS_URL': f'redis://127.0.0.1:{redis_port}/0',
                   'AGOR_DATA_DIR': str(data_dir), 'AGOR_PORT': str(app_port), 'AGOR_HOST': '127.0.0.1',
                   'AGOR_RUNNER': '1' if i == 0 else '0', 'AGOR_TRUSTED_PROXIES': '127.0.0.1'}
            log = open(root / f'app{i + 1}.log', 'a')
            process = subprocess.Popen([sys.executable, str(ROOT / 'main.py'), *args.main_args], cwd=ROOT, env=env,
                                       stdout=log, stderr=subprocess.STDOUT)
            processes.append(process)
            if i == 0:  # migrations and the demo seed run once, before the others start
                wait_http(f'http://127.0.0.1:{app_port}', process)
        for app_port, process in zip(ports[1:], processes[2:], strict=True):
            wait_http(f'http://127.0.0.1:{app_port}', process)
        asyncio.run(serve(port, ports))
    except KeyboardInterrupt:
        pass
    finally:
        for process in reversed(processes):
            process.send_signal(signal.SIGTERM)
        for process in processes:
            with contextlib.suppress(subprocess.TimeoutExpired):
                process.wait(15)
        for command in stops:
            subprocess.run(command, check=False, capture_output=True)


if __name__ == '__main__':
    main()
