"""Run one turn of an agent CLI as a subprocess and stream its transcript events.

The CLI runs as the request's Unix account, in its own process group (so a stop reaches the tools it started), with
stdin from /dev/null, in the request's cwd and with exactly the environment the adapter built. The files the adapter
writes into the home are written as that account too. Neither the env nor the prompt is logged.
"""
from __future__ import annotations

import asyncio
import contextlib
import inspect
import logging
import os
import signal
from collections import deque
from collections.abc import AsyncIterator, Callable
from pathlib import Path
from typing import Any

from agor.errors import DomainError
from agor.unix_accounts import become, files_as

from .base import RunOutcome, RunRequest, Runtime, TranscriptEvent, Turn
from .registry import find_binary, with_node_on_path

log = logging.getLogger(__name__)
LINE_LIMIT = 16 * 1024 * 1024  # longer output lines are dropped (with a notice), not fatal
STDERR_LINES = 20
LINES_PER_TURN = 200  # lines read before the event loop gets a turn (a few ms of work)
DRAIN_SECONDS = 2.0  # after the CLI exits, output is read until none came for this long (a background child may
DRAIN_MAX_SECONDS = 120.0  # hold the pipe open), and at most this long: a flood still buffered (up to 2 x LINE_LIMIT,
# read at the pace `on_event` allows: session_worker.BATCH_CHARS per batch) is read to its end
STOP_GRACE_SECONDS = 5.0
PROC = Path('/proc')


class EventLog:
    """Transcript events in order, consecutive plain assistant deltas held as one (joined when taken): a run printing
    100k lines keeps a few objects instead of 100k, which the garbage collector would walk again and again."""

    def __init__(self) -> None:
        self._events: list[TranscriptEvent] = []
        self._parts: list[str] | None = None  # the texts of the deltas at the end
        self.size = 0  # characters of text held

    def add(self, event: TranscriptEvent) -> None:
        self.size += len(event.text)
        if event.kind == 'assistant' and event.data == {'delta': True}:
            if self._parts is None:
                self._parts = []
            self._parts.append(event.text)
            return
        self._close()
        self._events.append(event)

    def take(self) -> list[TranscriptEvent]:
        """The events so far (the log is empty afterwards)."""
        self._close()
        events, self._events, self.size = self._events, [], 0
        return events

    def __bool__(self) -> bool:
        return bool(self._events) or self._parts is not None

    def _close(self) -> None:
        if self._parts is not None:
            self._events.append(TranscriptEvent('assistant', ''.join(self._parts), {'delta': True}))
            self._parts = None


class RunHandle:
    """The running CLI: `pid` (also its process group id) and `stop()`."""

    def __init__(self, pid: int) -> None:
        self.pid = pid
        self.stopped = False

    async def stop(self, grace: float = STOP_GRACE_SECONDS) -> None:
        """SIGTERM to the process group, SIGKILL after `grace` seconds; the run then ends as 'stopped'."""
        self.stopped = self.stopped or process_group_alive(self.pid)  # a CLI that already ended keeps its outcome
        await stop_process_group(self.pid, grace)


async def run(runtime: Runtime, request: RunRequest, on_event: Callable[[TranscriptEvent], Any], *,
              on_start: Callable[[RunHandle], Any] | None = None) -> RunOutcome:
    """Run one turn. `on_event` (sync or async) gets every transcript event as it arrives (from stdout, and retries
    some CLIs only log on stderr), `on_start` the handle. Error events are not passed on: they make the outcome's
    `error`, which the caller records once (a CLI often reports one error twice). A missing CLI or an invalid request
    ends as a failed outcome with a message for the user, never an exception. Cancelling the calling task stops the
    CLI's process group and re-raises."""
    binary = find_binary(runtime, request.cli_dir)
    if binary is None:
        return RunOutcome('failed', request.resume_id, runtime.missing_message())
    if not request.cwd.is_dir():
        return RunOutcome('failed', request.resume_id, f'The working directory {request.cwd} does not exist')
    try:
        switch = None if request.account is None else become(request.account)
        with files_as(request.account):  # synchronous: no other task runs on this thread meanwhile
            request.home.mkdir(parents=True, exist_ok=True)
            spec = runtime.build(request)
    except DomainError as exc:
        return RunOutcome('failed', request.resume_id, exc.message)
    except OSError as exc:
        return RunOutcome('failed', request.resume_id, f'Could not prepare {request.home}: {exc.strerror or exc}')
    try:
        process = await asyncio.create_subprocess_exec(
            binary, *spec.argv[1:], cwd=request.cwd, env=with_node_on_path(dict(spec.env), request.cli_dir),
            stdin=asyncio.subprocess.DEVNULL if spec.stdin is None else asyncio.subprocess.PIPE,
            stdout=asyncio.subprocess.PIPE,
            stderr=asyncio.subprocess.STDOUT if spec.merge_stderr else asyncio.subprocess.PIPE,
            start_new_session=True, limit=LINE_LIMIT, preexec_fn=switch)
    except OSError as exc:
        return RunOutcome('failed', request.resume_id, f'Could not start {runtime.label}: {exc.strerror or exc}')
    log.info('started %s (pid %s) in %s', runtime.name, process.pid, request.cwd)
    handle = RunHandle(process.pid)
    events = EventLog()
    stderr_tail: deque[str] = deque(maxlen=STDERR_LINES)
    turn = Turn(totals_before=request.totals_before or {}, mcp_servers=[server.name for server in request.mcp_servers])
    loop = asyncio.get_running_loop()
    last_output = [loop.time()]
    held = [0]  # readers waiting for `on_event` (its backpressure): output is still coming

    async def forward(new_events: list[TranscriptEvent]) -> None:
        for event in new_events:
            events.add(event)
            if event.kind != 'error':
                held[0] += 1
                try:
                    await _call(on_event, event)
                finally:
                    held[0] -= 1
                    last_output[0] = loop.time()

    async def read_stdout() -> None:
        async for line in read_lines(process.stdout):
            last_output[0] = loop.time()
            await forward(runtime.parse_line(line, turn) if line is not None else [_dropped_line()])

    async def read_stderr() -> None:
        if process.stderr:
            async for line in read_lines(process.stderr):
                text = (line or '[an overlong line]').rstrip('\n')
                await forward(runtime.parse_stderr(text, turn))
                if not (runtime.stderr_noise and runtime.stderr_noise.search(text)):
                    stderr_tail.append(text)

    async def write_stdin() -> None:
        if process.stdin:
            with contextlib.suppress(ConnectionError):  # the CLI may exit without reading it
                process.stdin.write((spec.stdin or '').encode())
                await process.stdin.drain()
                process.stdin.close()

    readers = asyncio.gather(read_stdout(), read_stderr(), write_stdin())
    try:
        if on_start:
            await _call(on_start, handle)
        exit_code = await _wait_for_exit(process, readers)
        last_output[0] = loop.time()
        deadline = loop.time() + DRAIN_MAX_SECONDS
        while not readers.done() and (held[0] or loop.time() - last_output[0] < DRAIN_SECONDS) \
                and loop.time() < deadline:
            await asyncio.wait({readers}, timeout=0.1)
        if readers.done():
            readers.result()
    except BaseException:
        await stop_process_group(process.pid, grace=1.0)
        raise
    finally:
        readers.cancel()
        readers.add_done_callback(lambda done: done.cancelled() or done.exception())  # retrieved: no log noise
    log.info('%s (pid %s) exited with code %s', runtime.name, process.pid, exit_code)
    outcome = runtime.outcome(exit_code, events.take(), list(stderr_tail))
    outcome.resume_id = outcome.resume_id or request.resume_id
    if handle.stopped:
        return RunOutcome('stopped', outcome.resume_id, None, outcome.stderr_tail, outcome.reply)
    return outcome


async def _wait_for_exit(process: asyncio.subprocess.Process, readers: asyncio.Future) -> int:
    """The exit code, noticed even while a background child still holds the output pipes open (`Process.wait()`
    waits for the pipes too). An exception from `on_event` in the readers ends the wait."""
    while process.returncode is None:
        if readers.done():
            readers.result()
            await asyncio.sleep(0.1)
        else:
            await asyncio.wait({readers}, timeout=0.1)
    return process.returncode


async def stop_process_group(pgid: int, grace: float = STOP_GRACE_SECONDS) -> None:
    """SIGTERM to the group, SIGKILL to what is left after `grace` seconds. Also works for a pid adopted after a
    restart of the app (the CLI runs in its own session, so its pid is its process group id)."""
    if not _signal_group(pgid, signal.SIGTERM):
        return
    loop = asyncio.get_running_loop()
    deadline = loop.time() + grace
    while loop.time() < deadline:
        await asyncio.sleep(0.05)
        if not process_group_alive(pgid):
            return
    _signal_group(pgid, signal.SIGKILL)


def process_group_alive(pgid: int) -> bool:
    """Whether a process of the group is still running. Zombies do not count: an orphan that died stays in the
    group until PID 1 reaps it, which in some containers takes a second or two."""
    if not PROC.is_dir():
        return _signal_group(pgid, 0)
    for stat_file in PROC.glob('[0-9]*/stat'):
        try:
            fields = stat_file.read_text().rsplit(')', 1)[1].split()
        except (OSError, IndexError):
            continue  # the process ended while we looked
        if fields[2] == str(pgid) and fields[0] != 'Z':
            return True
    return False


def _signal_group(pgid: int, sig: int) -> bool:
    """Send `sig` to the group; False when no process of the group is left."""
    try:
        os.killpg(pgid, sig)
    except (ProcessLookupError, PermissionError):  # gone (or the id now belongs to another user's processes)
        return False
    return True


async def read_lines(stream: asyncio.StreamReader) -> AsyncIterator[str | None]:
    """Decoded lines; None stands for a line longer than LINE_LIMIT, which is skipped. Every LINES_PER_TURN lines the
    event loop gets a turn: a buffered flood (up to 2 x LINE_LIMIT) would otherwise be read in one go, stalling
    every page of the app for as long."""
    skipping = False
    count = 0
    while True:
        count += 1
        if count % LINES_PER_TURN == 0:
            await asyncio.sleep(0)
        try:
            raw = await stream.readuntil(b'\n')
        except asyncio.IncompleteReadError as exc:  # end of stream
            if exc.partial and not skipping:
                yield exc.partial.decode('utf-8', 'replace')
            return
        except asyncio.LimitOverrunError as exc:
            await stream.readexactly(exc.consumed)
            skipping = True
            continue
        if skipping:
            skipping = False
            yield None
        else:
            yield raw.decode('utf-8', 'replace')


def _dropped_line() -> TranscriptEvent:
    return TranscriptEvent('system', f'An output line longer than {LINE_LIMIT // 2**20} MiB was skipped', {'raw': True})


async def _call(callback: Callable[..., Any], *args: Any) -> None:
    result = callback(*args)
    if result is not None and inspect.isawaitable(result):  # (the None check: once per output line, it counts)
        await result

