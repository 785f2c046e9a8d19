"""Agor: a multiplayer board for teams running AI coding agents. `python main.py --help` lists the options."""
from __future__ import annotations

import argparse
import asyncio
import gc
import logging
import os
import sys
import threading
from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path
from typing import Any

from agor.config import SettingsError, load_settings, session_secret


def parse_args(argv: list[str]) -> argparse.Namespace:
    parser = argparse.ArgumentParser(prog='main.py', description=__doc__)
    parser.add_argument('--data-dir', help='where the database, worktrees and secrets live (default ./data)')
    parser.add_argument('--port', type=int, help='HTTP port (default 8080)')
    parser.add_argument('--demo', action='store_true', default=None, help='seed a demo team and boards')
    parser.add_argument('--demo-reset', action='store_true', help='reset the demo data now, then start')
    return parser.parse_args(argv)


# under pytest, main.py is run by NiceGUI's test plugin: sys.argv is pytest's, so only the environment counts
args = parse_args([] if 'PYTEST_CURRENT_TEST' in os.environ else sys.argv[1:])
try:
    settings = load_settings(data_dir=args.data_dir, port=args.port, demo=args.demo)  # the one settings object
except SettingsError as error:  # a bad value: what is expected, one line per variable, no traceback
    print('\n'.join(f'Agor cannot start: {problem}' for problem in str(error).splitlines()), file=sys.stderr)
    sys.exit(2)
os.environ.setdefault('NICEGUI_STORAGE_PATH', str(settings.data_dir / 'sessions'))
from agor import cluster  # noqa: E402

if problem := cluster.unreachable(settings):
    print(f'Agor cannot start: {problem}', file=sys.stderr)
    sys.exit(2)
if settings.redis_url:  # the browsers' logins in NiceGUI's user storage, shared by the cluster's processes
    os.environ['NICEGUI_REDIS_URL'] = settings.redis_url
    os.environ['NICEGUI_REDIS_KEY_PREFIX'] = 'agor:nicegui:'

from nicegui import app, core, ui  # noqa: E402  (after NICEGUI_STORAGE_PATH is set)

import pages  # noqa: E402
from pages import mcp_endpoint  # noqa: E402
from agor import (auth, credentials, db, demo, scheduler, template_workers, terminals,  # noqa: E402
                  unix_accounts, user_secrets)
from agor.secret_box import WrongMasterSecret  # noqa: E402
from agor.unix_accounts import AGENT_HOMES  # noqa: E402
from agor.proxies import TrustedProxyHeaders, origin_check  # noqa: E402
from agor.session_worker import SessionWorkers  # noqa: E402
from agor.gateway.relay import Relay  # noqa: E402
from components import presence_layer  # noqa: E402
from components import add_assets  # noqa: E402

logging.basicConfig(level=logging.INFO, format='%(asctime)s %(levelname)s %(name)s: %(message)s')


WORKER_THREADS = 64
session_workers = SessionWorkers(settings)
gateway_relay = Relay()  # posts gateway sessions' progress and answers to their threads (where the runs are)


def started_pool(threads: int) -> ThreadPoolExecutor:
    """A pool whose threads all run now: a pool starts a thread when a task finds none idle, and starting one waits
    on the event loop for the new thread to run, which under a crowd's first page loads cost the loop about a second
    in all (docs/benchmarks.md)."""
    pool = ThreadPoolExecutor(threads, thread_name_prefix='agor')
    all_running = threading.Barrier(threads + 1)
    for _ in range(threads):
        pool.submit(all_running.wait)
    all_running.wait()
    return pool


async def startup() -> None:
    # Handlers' worker threads mostly wait: on the database, git, or a server the app calls out to (an MCP or
    # authorization server that never answers holds one for its whole timeout). Python's default pool (CPUs + 4) let
    # a few such waits stall everyone's actions; waiting threads cost little.
    asyncio.get_running_loop().set_default_executor(started_pool(WORKER_THREADS))
    db.guard_loop(None)  # start-up uses the database before it serves (NiceGUI's test users start it again)
    db.init(settings.database_url)
    try:
        user_secrets.init(settings)  # the master secret must be the one users' secrets were sealed with
    except WrongMasterSecret as error:
        print(f'Agor cannot start: {error}', file=sys.stderr, flush=True)
        os._exit(2)
    credentials.configure(settings.agent_env, settings.data_dir / AGENT_HOMES)
    unix_accounts.prepare(settings)  # before any terminal or agent can run: the executor account, the data dir locked
    presence_layer.start()
    cluster.start(settings)  # the event bus (Redis with REDIS_URL) bound to this loop, before anything subscribes
    template_workers.pool.warm()
    if settings.owner_email and settings.owner_password and not auth.has_users():
        auth.create_first_owner(settings.owner_email, settings.owner_name or 'Owner', settings.owner_password)
    if settings.demo:
        if args.demo_reset:
            demo.reset(settings)
        demo.ensure_seeded(settings)
    db.guard_loop(asyncio.get_running_loop())  # from now on, no database or git call on the loop
    # websocket connections from other sites are refused: the same origin (X-Forwarded-Host/-Proto only from
    # AGOR_TRUSTED_PROXIES) or one of AGOR_ALLOWED_ORIGINS
    core.sio.eio.cors_allowed_origins = origin_check(settings.allowed_origins)
    add_assets()
    pages.register(settings, terminals.start(settings))
    await mcp_endpoint.endpoint.start(settings)  # /mcp: the app's MCP server for its own agents
    if settings.runner:  # the one process that runs agent sessions; the others' prompts reach it over the bus
        await session_workers.start()
        await gateway_relay.start()
    scheduler.start(settings, watchdog=session_workers.check)
    # What start-up made (modules, NiceGUI, the ORM's mappers...) lives as long as the app: out of the collector's
    # generations, a full collection no longer walks it. Those walks held every thread for 0.2 s each, several a
    # second while a crowd opened a big board; now 0.02-0.09 s (docs/benchmarks.md).
    gc.collect()
    gc.freeze()


async def shutdown() -> None:
    await mcp_endpoint.endpoint.stop()
    scheduler.stop()
    terminals.stop()
    await gateway_relay.stop()
    await session_workers.stop_all()
    template_workers.pool.close()
    cluster.stop()
    db.guard_loop(None)


def websocket_compression_without_idle_memory() -> None:
    """Keep permessage-deflate, but without server context takeover (RFC 7692 7.1.1.1, a server may ask for it on
    its own): a compressor is made per message and freed after it, instead of ~300 KB of zlib state held for every
    open page. Browsers accept it; what it costs is compression across messages. And cheap compressors: zlib level 1,
    not 6 (every viewer's copy of a streamed transcript or a pushed board is compressed on its own; level 6 cost about
    80 ms of the event loop per viewer per 5 MB, level 1 about 30 ms), with a 4 KiB window and memLevel 4, which make
    a compressor in 15-20 us instead of 65-85 us (a cursor push is ~1-8 KB, one per page per tick) for the same size:
    a compressor may use a smaller window than the one negotiated, every decompressor reads it (docs/benchmarks.md)."""
    import types
    import zlib
    from functools import partial

    from uvicorn.protocols.websockets import wsproto_impl
    from wsproto import extensions
    wsproto_impl.PerMessageDeflate = partial(wsproto_impl.PerMessageDeflate, server_no_context_takeover=True,
                                             client_no_context_takeover=True)

    def compressobj(level: int, method: int, wbits: int) -> zlib._Compress:  # wsproto: (level, DEFLATED, -bits)
        return zlib.compressobj(1, method, max(wbits, -12), 4)
    fast = types.SimpleNamespace(**{name: getattr(zlib, name) for name in dir(zlib) if not name.startswith('__')})
    fast.compressobj = compressobj  # for wsproto alone
    extensions.zlib = fast


def handler_signatures_inspected_once() -> None:
    """NiceGUI reads an event handler's signature on every event, to know whether to pass it the event's arguments:
    a third of a cursor move's time on the server (docs/benchmarks.md). A function's signature does not change, so
    each handler is inspected once (weakly held: a closed page's handlers go with it), a bound method by its function
    (every element's change handlers are bound methods made anew)."""
    import types
    import weakref

    from nicegui import helpers
    inspect = helpers.expects_arguments
    known: weakref.WeakKeyDictionary = weakref.WeakKeyDictionary()  # function -> answer
    known_methods: weakref.WeakKeyDictionary = weakref.WeakKeyDictionary()  # a bound method's function -> answer

    def expects_arguments(func):
        bound = isinstance(func, types.MethodType)  # made anew at each access: known by its function
        cache, key = (known_methods, func.__func__) if bound else (known, func)
        try:
            return cache[key]
        except KeyError:
            cache[key] = answer = inspect(func)
            return answer
        except TypeError:  # not weakly referable
            return inspect(func)
    helpers.expects_arguments = expects_arguments


def page_messages_heard_only_from_the_pages_socket() -> None:
    """NiceGUI hands a socket's `event`, `javascript_response`, `ack` and `log` to the page the message names
    (`client_id`), whichever socket sent it: a socket that learnt another page's id could act as that page's user
    (move cards, open terminals as them). Only a socket that did that page's handshake is heard for it."""
    from nicegui import Client
    handlers = core.sio.handlers['/']

    def only_from_its_socket(handler: Callable[[str, dict], None]) -> Callable[[str, Any], None]:
        def checked(sid: str, msg: Any) -> None:
            client = Client.instances.get(msg.get('client_id')) if isinstance(msg, dict) else None
            if client is not None and sid in client._socket_to_document_id:  # noqa: SLF001 (the handshaken sockets)
                handler(sid, msg)
        return checked
    for name in ('event', 'javascript_response', 'ack', 'log'):
        handlers[name] = only_from_its_socket(handlers[name])


websocket_compression_without_idle_memory()
handler_signatures_inspected_once()
page_messages_heard_only_from_the_pages_socket()
app.add_middleware(TrustedProxyHeaders, trusted=settings.trusted_proxies)
app.add_static_files('/sounds', Path(__file__).parent / 'components' / 'sounds')


@app.get('/healthz')
def healthz() -> dict[str, str]:
    return {'status': 'ok'}


app.on_startup(startup)
app.on_shutdown(shutdown)
ui.run(host=settings.host, port=settings.port, title='Agor', favicon='◆', reload=False, show=False, language='en-US',
       storage_secret=session_secret(settings.data_dir), reconnect_timeout=10,
       proxy_headers=False)  # uvicorn would believe X-Forwarded-For from 127.0.0.1: agor.proxies decides instead
