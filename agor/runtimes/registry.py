"""The runtimes by name, where their CLIs are, and which versions are installed (for the admin page)."""
from __future__ import annotations

import functools
import os
import shutil
import subprocess
from dataclasses import dataclass
from pathlib import Path

from agor.errors import InvalidInput

from .base import Runtime
from .claude import ClaudeRuntime
from .codex import CodexRuntime
from .gemini import GeminiRuntime
from .opencode import OpenCodeRuntime
from .shell import ShellRuntime

RUNTIMES: dict[str, Runtime] = {runtime.name: runtime for runtime in (
    ClaudeRuntime(), CodexRuntime(), GeminiRuntime(), OpenCodeRuntime(), ShellRuntime())}
VERSION_TIMEOUT_SECONDS = 10


@dataclass(frozen=True)
class CliStatus:
    name: str
    label: str
    path: str | None
    version: str | None
    install_command: str | None


def get(name: str) -> Runtime:
    try:
        return RUNTIMES[name]
    except KeyError:
        raise InvalidInput(f'Unknown agent runtime {name!r}; choose one of {", ".join(RUNTIMES)}') from None


def cli_dir() -> Path:
    """The npm prefix scripts/_setup.sh installs the pinned CLIs into."""
    return Path(os.environ.get('AGOR_AGENT_CLI_DIR') or Path.home() / '.cache' / 'agor' / 'agent-clis')


def find_binary(runtime: Runtime) -> str | None:
    """The CLI on PATH, else in the AGOR_AGENT_CLI_DIR prefix (node_modules/.bin), else None."""
    return shutil.which(runtime.binary) or shutil.which(runtime.binary, path=str(cli_dir() / 'node_modules' / '.bin'))


def installed() -> list[CliStatus]:
    """Every runtime's CLI: path and `--version` (None when missing). Blocking: call it from a worker thread."""
    statuses = []
    for runtime in RUNTIMES.values():
        path = find_binary(runtime)
        version = _version(path, os.stat(path).st_mtime) if path else None
        statuses.append(CliStatus(runtime.name, runtime.label, path, version, runtime.install_command))
    return statuses


@functools.cache
def _version(path: str, mtime: float) -> str | None:  # mtime: a reinstall asks again
    try:
        done = subprocess.run([path, '--version'], capture_output=True, text=True, stdin=subprocess.DEVNULL,
                              timeout=VERSION_TIMEOUT_SECONDS)
    except (OSError, subprocess.TimeoutExpired):
        return None
    lines = (done.stdout or done.stderr).strip().splitlines()
    return lines[0].strip() if done.returncode == 0 and lines else None
