"""A viewer's tmux client: `tmux attach` on a PTY the app owns, and the pump between that PTY and the viewer.

The pump knows nothing of users or sharing: it hands output to `on_output(text, size)` and reports `on_hangup()` when
the client is gone. Output is read only while less than HIGH_WATER bytes are unsent or unacknowledged, so a slow
browser makes tmux see a slow terminal (it then skips intermediate frames) instead of this process buffering a flood.
"""
from __future__ import annotations

import asyncio
import codecs
import fcntl
import os
import struct
import subprocess
import termios
from collections.abc import Callable
from dataclasses import dataclass

from .. import unix_accounts
from ..unix_accounts import Account

READ_SIZE = 65536
COALESCE = 0.016  # output is sent at once, then at most every 16 ms while it keeps coming
HIGH_WATER = 256 * 1024  # stop reading a viewer's PTY when this much output is unsent or not yet shown
LOW_WATER = 64 * 1024  # ... and read again below this
MAX_INPUT = 1024 * 1024  # typed/pasted bytes waiting for the PTY; beyond this input is dropped


@dataclass(frozen=True)
class Client:
    """A started `tmux attach`: its process, the PTY's master side and the name of its terminal."""
    process: subprocess.Popen
    fd: int
    tty: str


def spawn(argv: list[str], account: Account, pass_fds: tuple[int, ...], cols: int, rows: int) -> Client:
    """Start `argv` (a tmux client) on a new PTY as `account`, sized before it starts so the first redraw is right.
    Blocking: call it off the event loop."""
    master, slave = os.openpty()
    try:
        _set_size(slave, cols, rows)
        if not account.is_current:
            os.fchown(slave, account.uid, -1)
        env = {**unix_accounts.login_env(account), 'TERM': 'xterm-256color', 'COLORTERM': 'truecolor'}
        process = subprocess.Popen(argv, stdin=slave, stdout=slave, stderr=slave, env=env, cwd='/', close_fds=True,
                                   pass_fds=pass_fds, **unix_accounts.spawn_as(account))
        tty = os.ttyname(slave)
    except BaseException:
        os.close(master)
        raise
    finally:
        os.close(slave)
    os.set_blocking(master, False)
    return Client(process, master, tty)


class Pump:
    """Moves a client's output to `on_output` (with flow control) and typed input to the client, on the event loop
    it is created on."""

    def __init__(self, client: Client, *, on_output: Callable[[str, int], None],
                 on_hangup: Callable[[], None]) -> None:
        self.client, self.fd = client, client.fd
        self.loop = asyncio.get_running_loop()
        self.closed = False
        self._on_output, self._on_hangup = on_output, on_hangup
        self._decoder = codecs.getincrementaldecoder('utf-8')('replace')
        self._out: list[str] = []
        self._out_size = 0
        self._unacked = 0
        self._reading = False
        self._flush_at: asyncio.TimerHandle | None = None
        self._last_flush = 0.0
        self._input = b''
        self._writer = False
        self._resume_reading()

    def write(self, data: str) -> bool:
        """Queue typed input; False (dropped) when closed or when more than MAX_INPUT bytes are already waiting."""
        if self.closed or len(self._input) + len(data) > MAX_INPUT:
            return False
        self._input += data.encode('utf-8', 'replace')
        self._drain_input()
        return True

    def resize(self, cols: int, rows: int) -> None:
        if not self.closed:
            _set_size(self.fd, cols, rows)

    def ack(self, size: int) -> None:
        """The viewer has shown `size` bytes of output."""
        self._unacked = max(0, self._unacked - int(size))
        if not self._reading and self._out_size + self._unacked < LOW_WATER:
            self._resume_reading()

    def forget_unacked(self) -> None:
        """The viewer will never acknowledge what it was sent (it built a new terminal, or reconnected)."""
        self.ack(self._unacked)

    def close(self) -> None:
        """Deliver what was read, then hang up the PTY: the tmux client detaches (the shell lives on)."""
        if self.closed:
            return
        self.closed = True
        self._flush()
        if self._flush_at is not None:
            self._flush_at.cancel()
        self.loop.remove_reader(self.fd)
        self.loop.remove_writer(self.fd)
        os.close(self.fd)
        self.loop.run_in_executor(None, _reap, self.client.process)

    def _readable(self) -> None:
        try:
            data = os.read(self.fd, READ_SIZE)
        except BlockingIOError:
            return
        except OSError:  # EIO: the tmux client has gone
            data = b''
        if not data:
            self._on_hangup()
            return
        self._out.append(self._decoder.decode(data))
        self._out_size += len(data)
        if self._flush_at is None:
            delay = self._last_flush + COALESCE - self.loop.time()
            if delay <= 0:
                self._flush()
            else:
                self._flush_at = self.loop.call_later(delay, self._flush)
        if self._out_size + self._unacked >= HIGH_WATER:
            self.loop.remove_reader(self.fd)
            self._reading = False

    def _flush(self) -> None:
        self._flush_at = None
        if not self._out:
            return
        text, size = ''.join(self._out), self._out_size
        self._out.clear()
        self._out_size = 0
        self._unacked += size
        self._last_flush = self.loop.time()
        self._on_output(text, size)

    def _resume_reading(self) -> None:
        if not self.closed:
            self.loop.add_reader(self.fd, self._readable)
            self._reading = True

    def _drain_input(self) -> None:
        try:
            written = os.write(self.fd, self._input)
        except BlockingIOError:
            written = 0
        except OSError:
            self._input = b''
            written = 0
        self._input = self._input[written:]
        if self._input and not self._writer:
            self.loop.add_writer(self.fd, self._drain_input)
            self._writer = True
        elif not self._input and self._writer:
            self.loop.remove_writer(self.fd)
            self._writer = False


def _set_size(fd: int, cols: int, rows: int) -> None:
    cols, rows = max(2, min(int(cols), 1000)), max(1, min(int(rows), 500))
    fcntl.ioctl(fd, termios.TIOCSWINSZ, struct.pack('HHHH', rows, cols, 0, 0))


def _reap(process: subprocess.Popen) -> None:
    try:
        process.wait(timeout=3)
    except subprocess.TimeoutExpired:
        process.kill()
        process.wait()
