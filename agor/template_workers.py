"""Trigger templates render in worker processes with CPU-time, memory and wall-clock limits.

A template is code its author controls: nested loops can spin forever and a filter can ask for gigabytes. The
sandbox's size guards (agor.trigger_template) refuse the obvious cases; these limits bound everything else, outside
the app's process and threads, so a hostile template can only ever cost one worker process for WALL_SECONDS:

- each render gets at most WALL_SECONDS of wall-clock time; then its worker is killed (SIGKILL) and replaced;
- each render gets CPU_SECONDS of CPU time (RLIMIT_CPU, a backstop should the app not be there to kill it);
- a worker may grow by MEMORY_BYTES beyond what it uses at start (RLIMIT_AS): a bigger allocation is a MemoryError;
- at most MAX_WORKERS renders run at once, at a lower priority (nice) than the app, so logins and pages keep their
  CPU; a render that finds every worker busy for SLOT_SECONDS fails with a message instead of queueing up;
- a render can be cancelled (the preview when the template changed again): its worker is killed at once.

Workers start with an empty environment (no secret of the app's is inherited). When the app runs as root, a worker
gives up root for `nobody` (no groups) once it has imported what it renders with and before it reads its first job,
so a template that escaped the sandbox would hold no privilege and could not read the data dir (its files are 0600
root's). Workers speak one JSON line per job over stdin/stdout; `agor.trigger_template.serve_jobs` is the worker side. A worker that was killed is replaced in the
background, so the next render finds one started.
"""
from __future__ import annotations

import asyncio
import json
import logging
import os
import pwd
import resource
import select
import signal
import subprocess
import sys
import threading
import time
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path
from typing import Any

log = logging.getLogger(__name__)
ROOT = Path(__file__).resolve().parent.parent
WALL_SECONDS = 1.0
SLOT_SECONDS = 0.5
CPU_SECONDS = 2
MEMORY_BYTES = 128 * 1024 * 1024
MAX_WORKERS = 2  # renders at once: a template is CPU-bound, so more than the cores only queues in the kernel
MAX_IDLE = MAX_WORKERS  # all kept started: starting one takes a fraction of a second, more on a busy machine
NICENESS = 10
START_SECONDS = 20  # a worker starting on a very busy machine
UNPRIVILEGED = 'nobody'  # what a worker started as root renders as
OVERFLOW_ID = 65534  # the kernel's id for nobody, should the system have no such entry


class RenderFailed(Exception):
    """The template could not be rendered within the limits; the message is safe to show its author."""


class Cancelled(RenderFailed):
    def __init__(self) -> None:
        super().__init__('The preview was replaced by a newer one.')


class _Worker:
    def __init__(self) -> None:
        self.process = subprocess.Popen(
            [sys.executable, '-c', (f'import os; os.nice({NICENESS}); from agor import trigger_template; '
                                    'trigger_template.serve_jobs()')], cwd=ROOT, env={'LANG': 'C.UTF-8'},
            stdin=subprocess.PIPE, stdout=subprocess.PIPE, stderr=subprocess.DEVNULL, start_new_session=True)
        try:
            self._read_line(time.monotonic() + START_SECONDS, None)  # 'ready': jinja2 is imported, limits are set
        except (TimeoutError, ProcessLookupError):
            self.kill()
            raise RenderFailed('The template renderer did not start; try again in a moment.') from None

    def run(self, job: dict[str, Any], deadline: float, cancel: threading.Event | None) -> dict[str, Any]:
        assert self.process.stdin is not None
        self.process.stdin.write(json.dumps(job).encode() + b'\n')
        self.process.stdin.flush()
        return json.loads(self._read_line(deadline, cancel))

    def _read_line(self, deadline: float, cancel: threading.Event | None) -> bytes:
        stdout = self.process.stdout
        assert stdout is not None
        while True:
            if cancel is not None and cancel.is_set():
                raise Cancelled()
            left = deadline - time.monotonic()
            if left <= 0:
                raise TimeoutError()
            if select.select([stdout], [], [], min(left, 0.05))[0]:
                line = stdout.readline()
                if not line.endswith(b'\n'):
                    raise ProcessLookupError()  # it died (a limit, or killed)
                return line

    def kill(self) -> None:
        if self.process.poll() is None:
            self.process.kill()
        self.process.wait()
        for stream in (self.process.stdin, self.process.stdout):
            if stream is not None:
                stream.close()


class WorkerPool:
    def __init__(self) -> None:
        self._start_empty()
        # A process forked from this one (a test runner's worker, a pre-forking server) starts with an empty pool: the
        # parent's workers answer the parent, and the threads of its executor do not exist there (a render would wait
        # for them forever).
        os.register_at_fork(after_in_child=self._start_empty)

    def _start_empty(self) -> None:
        self._idle: list[_Worker] = []
        self._busy = 0
        self._starting = 0
        self._changed = threading.Condition()
        self._waiting = ThreadPoolExecutor(max_workers=4 * MAX_WORKERS, thread_name_prefix='template-render')

    def render(self, source: str, values: dict[str, Any]) -> str:
        """The rendered text; RenderFailed (a TemplateProblem from the sandbox arrives as its message) otherwise."""
        return self._render(source, values, None, time.monotonic())

    async def render_async(self, source: str, values: dict[str, Any]) -> str:
        """`render` for the event loop: it waits in the pool's own threads (never the loop's default executor, which
        logins and pages use), and cancelling the awaiting task kills its worker."""
        cancel = threading.Event()
        try:
            return await asyncio.get_running_loop().run_in_executor(self._waiting, self._render, source, values,
                                                                    cancel, time.monotonic())
        except asyncio.CancelledError:
            cancel.set()
            raise

    def warm(self) -> None:
        """Start MAX_IDLE workers in the background, so that the first renders do not wait for one to start."""
        for _ in range(MAX_IDLE):
            self._replace()

    def close(self) -> None:
        with self._changed:
            idle, self._idle = self._idle, []
        for worker in idle:
            worker.kill()

    def _render(self, source: str, values: dict[str, Any], cancel: threading.Event | None, start: float) -> str:
        worker = self._take(start + SLOT_SECONDS, cancel)
        if cancel is not None and cancel.is_set():  # while it waited for a worker to start: the worker is unused
            self._give_back(worker, True)
            raise Cancelled()
        healthy = False
        try:
            reply = worker.run({'source': source, 'values': values}, time.monotonic() + WALL_SECONDS, cancel)
            healthy = not reply.get('retire')
        except TimeoutError:
            raise RenderFailed(f'The template took longer than {WALL_SECONDS:g} s to render and was stopped.') \
                from None
        except (ProcessLookupError, BrokenPipeError, ValueError):
            raise RenderFailed(_death(worker)) from None
        finally:
            self._give_back(worker, healthy)
        if 'error' in reply:
            raise RenderFailed(reply['error'])
        return reply['text']

    def _take(self, deadline: float, cancel: threading.Event | None) -> _Worker:
        with self._changed:
            while self._busy >= MAX_WORKERS:
                if cancel is not None and cancel.is_set():
                    raise Cancelled()
                if time.monotonic() >= deadline:
                    raise RenderFailed('Too many templates are rendering right now; try again in a moment.')
                self._changed.wait(min(deadline - time.monotonic(), 0.05))
            self._busy += 1
            if self._idle:
                return self._idle.pop()
        try:
            return _Worker()
        except BaseException:
            self._give_back(None, False)
            raise

    def _give_back(self, worker: _Worker | None, healthy: bool) -> None:
        if worker is not None and not healthy:
            worker.kill()  # first: a runaway template stops using CPU before anyone else gets its slot
        with self._changed:
            self._busy -= 1
            keep = worker is not None and healthy and len(self._idle) < MAX_IDLE
            if keep:
                self._idle.append(worker)  # type: ignore[arg-type]
            self._changed.notify_all()
        if worker is not None and healthy and not keep:
            worker.kill()
        if worker is not None and not healthy:
            self._replace()

    def _replace(self) -> None:
        """Start a worker in the background for the next render, unless enough are idle or starting."""
        with self._changed:
            if len(self._idle) + self._starting >= MAX_IDLE:
                return
            self._starting += 1
        threading.Thread(target=self._start_idle, name='template-worker-start', daemon=True).start()

    def _start_idle(self) -> None:
        worker = None
        try:
            worker = _Worker()
        except Exception:  # the next render starts one itself (and fails with a message if that fails too)
            log.exception('could not start a template worker')
        with self._changed:
            self._starting -= 1
            if worker is not None and len(self._idle) < MAX_IDLE:
                self._idle.append(worker)
                worker = None
            self._changed.notify_all()
        if worker is not None:
            worker.kill()


def _death(worker: _Worker) -> str:
    worker.kill()
    if worker.process.returncode == -signal.SIGXCPU:
        return f'The template used more than {CPU_SECONDS} s of CPU time and was stopped.'
    return 'The template renderer stopped unexpectedly (the template may need too much memory).'


pool = WorkerPool()


# ---- the worker side (its loop is agor.trigger_template.serve_jobs, which renders) ------------------------------

def limit_memory() -> None:
    with open('/proc/self/statm') as statm:
        in_use = int(statm.read().split()[0]) * os.sysconf('SC_PAGE_SIZE')
    resource.setrlimit(resource.RLIMIT_AS, (in_use + MEMORY_BYTES, in_use + MEMORY_BYTES))


def drop_root() -> None:
    """As root, become UNPRIVILEGED for good (real, effective and saved ids, no supplementary groups)."""
    if os.geteuid() != 0:
        return
    try:
        entry = pwd.getpwnam(UNPRIVILEGED)
        uid, gid = entry.pw_uid, entry.pw_gid
    except KeyError:
        uid = gid = OVERFLOW_ID
    os.setgroups([])
    os.setgid(gid)
    os.setuid(uid)
