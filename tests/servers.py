"""Private, throwaway PostgreSQL and Redis servers on loopback and free ports, for the tests that need them."""
from __future__ import annotations

import glob
import os
import re
import shutil
import subprocess
import tempfile
import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

from .app_server import free_port

INITDB = sorted(glob.glob('/usr/lib/postgresql/*/bin/initdb'),
                key=lambda path: [int(n) for n in re.findall(r'\d+', path)])
REDIS_SERVER = shutil.which('redis-server') or ''


@contextmanager
def postgres_server() -> Iterator[str]:
    """Starts a PostgreSQL server, yields its URL, and always stops it again."""
    bin_dir = Path(INITDB[-1]).parent  # the newest installed version
    # Not under tmp_path: pytest makes its base temp dir private to root, and the server may run as `postgres`.
    root = Path(tempfile.mkdtemp(prefix='agor-pg-'))
    as_root = os.geteuid() == 0  # initdb refuses to run as root
    if as_root:
        shutil.chown(root, 'postgres', 'postgres')

    def run(*args: str) -> None:
        command = ['runuser', '-u', 'postgres', '--', *args] if as_root else list(args)
        subprocess.run(command, cwd=root, check=True, capture_output=True, text=True, timeout=60)

    data, log, port = root / 'data', root / 'server.log', free_port()
    started = False
    try:
        run(str(bin_dir / 'initdb'), '-D', str(data), '-A', 'trust', '-U', 'agor', '-E', 'UTF8', '--no-locale')
        options = f'-c listen_addresses=127.0.0.1 -p {port} -k {root}'
        started = True  # from here on a half-started server must be stopped too
        try:
            run(str(bin_dir / 'pg_ctl'), '-D', str(data), '-l', str(log), '-o', options, '-w', '-t', '30', 'start')
        except subprocess.CalledProcessError as error:
            raise RuntimeError(f'PostgreSQL did not start:\n{error.stdout}{error.stderr}\n{log.read_text()}') from error
        run(str(bin_dir / 'pg_isready'), '-h', '127.0.0.1', '-p', str(port), '-U', 'agor', '-d', 'postgres')
        yield f'postgresql://agor@127.0.0.1:{port}/postgres'
    finally:
        try:
            if started:
                run(str(bin_dir / 'pg_ctl'), '-D', str(data), '-m', 'immediate', 'stop')
        finally:
            shutil.rmtree(root)


@contextmanager
def redis_server(port: int | None = None) -> Iterator[str]:
    """Starts a redis-server (no persistence) on loopback (a free port, or `port` to start one again where another
    was), yields its URL, and always stops it again."""
    import redis
    root, port = Path(tempfile.mkdtemp(prefix='agor-redis-')), port or free_port()
    process = subprocess.Popen([REDIS_SERVER, '--bind', '127.0.0.1', '--port', str(port), '--save', '',
                                '--appendonly', 'no', '--dir', str(root)],
                               stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    url = f'redis://127.0.0.1:{port}/0'

    def ping() -> None:
        with redis.Redis.from_url(url) as client:
            client.ping()
    with serving(process, root, ping, 'redis-server'):
        yield url


@contextmanager
def serving(process: subprocess.Popen, root: Path, ready: Callable[[], Any], what: str) -> Iterator[None]:
    """Waits (up to 20 s) until `ready()` returns without an exception, then yields; always stops `process` and
    removes `root` after."""
    try:
        deadline = time.monotonic() + 20
        while True:
            try:
                ready()
                break
            except Exception as error:
                if process.poll() is not None or time.monotonic() > deadline:
                    stderr = process.stderr.read() if process.stderr else ''
                    raise RuntimeError(f'{what} did not start: {error}\n{stderr}') from None
                time.sleep(0.05)
        yield
    finally:
        process.terminate()
        process.wait(10)
        shutil.rmtree(root, ignore_errors=True)
