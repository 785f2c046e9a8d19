"""Thin, safe wrappers around the git CLI (run from worker threads, never on the event loop).

Long work (a clone, a worktree's checkout) reports as it goes: `progress(phase, percent)` is called with git's own
progress lines ("Receiving objects", 42), `percent` None for a step without one ("Cloning into 'x'...")."""
from __future__ import annotations

import os
import re
import subprocess
import threading
from collections.abc import Callable
from pathlib import Path
from urllib.parse import unquote, urlsplit

from .db import refuse_on_event_loop
from .errors import InvalidInput

TIMEOUT = 120
LONG_TIMEOUT = 30 * 60  # a clone or checkout that reports its progress
# no ext:: or fd:: transports, no credential prompts, no pager
_ENV = {'GIT_TERMINAL_PROMPT': '0', 'GIT_ALLOW_PROTOCOL': 'file:git:http:https:ssh', 'GIT_PAGER': 'cat'}
_PERCENT = re.compile(r'^(?:remote: )?([A-Z][A-Za-z ]*?):\s+(\d{1,3})%')
_STEP = re.compile(r"^(Cloning into|Preparing worktree)\b")

Progress = Callable[[str, int | None], None]


class GitError(InvalidInput):
    pass


class GitTimeout(GitError):
    """git ran too long and was killed: what it wrote is left as it was."""


def git(*args: str, cwd: Path | None = None, check: bool = True,
        progress: Progress | None = None) -> subprocess.CompletedProcess[str]:
    """Run git; with `progress`, git reports as it goes (see the module) and may run for LONG_TIMEOUT."""
    refuse_on_event_loop(f'git {args[0]}')
    timeout = TIMEOUT if progress is None else LONG_TIMEOUT
    try:
        if progress is None:
            result = subprocess.run(['git', *args], cwd=cwd, capture_output=True, text=True, timeout=timeout,
                                    env={**os.environ, **_ENV}, stdin=subprocess.DEVNULL)
        else:
            result = _reporting(['git', *args], cwd, timeout, progress)
    except FileNotFoundError:
        raise GitError('git is not installed on the server (apt-get install git).') from None
    except subprocess.TimeoutExpired:
        took = f'{timeout // 60} min' if timeout >= 60 else f'{timeout} s'
        raise GitTimeout(f'git {args[0]} took longer than {took} and was stopped.') from None
    if check and result.returncode != 0:
        raise GitError(_reason(result.stderr) or f'git {args[0]} failed.')
    return result


def _reporting(command: list[str], cwd: Path | None, timeout: float,
               progress: Progress) -> subprocess.CompletedProcess[str]:
    """`command` with its stderr read as it comes: each progress line (git ends them with a carriage return) is
    passed on once it says something new; the whole stderr is kept for the error."""
    process = subprocess.Popen(command, cwd=cwd, stdin=subprocess.DEVNULL, stdout=subprocess.DEVNULL,
                               stderr=subprocess.PIPE, env={**os.environ, **_ENV, 'GIT_PROGRESS_DELAY': '0'})
    timed_out = threading.Event()

    def stop() -> None:
        timed_out.set()
        process.kill()
    timer = threading.Timer(timeout, stop)
    timer.start()
    seen: list[str] = []
    last: tuple[str, int | None] | None = None
    pending = ''
    try:
        assert process.stderr is not None
        while chunk := process.stderr.read1(4096):
            pending += chunk.decode(errors='replace')
            *lines, pending = re.split(r'[\r\n]', pending)
            for line in filter(None, (line.strip() for line in lines)):
                seen.append(line)
                step = _progress_of(line)
                if step is not None and step != last:
                    last = step
                    progress(*step)
        process.wait()
    finally:
        timer.cancel()
        if process.poll() is None:
            process.kill()
            process.wait()
    if timed_out.is_set():
        raise subprocess.TimeoutExpired(command, timeout)
    return subprocess.CompletedProcess(command, process.returncode, '', '\n'.join([*seen, pending]))


def _progress_of(line: str) -> tuple[str, int | None] | None:
    if match := _PERCENT.match(line):
        return match[1], min(int(match[2]), 100)
    if match := _STEP.match(line):
        return line.rstrip('.').removesuffix('..'), None
    return None


def toplevel(path: Path) -> Path:
    """The root of the work tree at path, or a clear error if it is not a git repository."""
    if not path.is_dir():
        raise InvalidInput(f'{path} is not a directory on the server.')
    result = git('rev-parse', '--show-toplevel', cwd=path, check=False)
    if result.returncode != 0:
        raise InvalidInput(f'{path} is not a git repository.')
    return Path(result.stdout.strip()).resolve()


def default_branch(repo: Path) -> str:
    result = git('symbolic-ref', '--quiet', '--short', 'HEAD', cwd=repo, check=False)
    return result.stdout.strip() or 'main'


def clone_source_path(source: str) -> Path | None:
    """The path on this machine a clone source names, as git reads it, or None for a remote one: a `file://` URL, or
    anything without `://` that is not scp-like `host:path` (git's rule: no colon, or a slash before the first one).
    A source that looks like an option is refused."""
    if source.startswith('-'):
        raise InvalidInput('A clone source cannot start with "-".')
    if source.lower().startswith('file://'):
        url = urlsplit(source)
        if url.netloc not in {'', 'localhost'}:
            raise InvalidInput('A file:// URL names a path on this server: file:///path/to/repo.')
        return Path(unquote(url.path))
    if '://' in source:
        return None
    colon, slash = source.find(':'), source.find('/')
    if colon > 0 and (slash < 0 or colon < slash):
        return None
    return Path(source)


def clone(source: str, target: Path, progress: Progress | None = None) -> None:
    """Clone `source` (checked with clone_source_path first) into `target`, reporting to `progress` as it goes."""
    target.parent.mkdir(parents=True, exist_ok=True)
    git('clone', '--progress' if progress else '--quiet', '--', source, str(target), progress=progress)


def branch_exists(repo: Path, branch: str) -> bool:
    return git('show-ref', '--verify', '--quiet', f'refs/heads/{branch}', cwd=repo, check=False).returncode == 0


def check_branch_name(branch: str) -> str:
    branch = branch.strip()
    if not branch or branch.startswith('-') or git('check-ref-format', '--branch', branch, check=False).returncode:
        raise InvalidInput(f'{branch!r} is not a valid branch name.')
    return branch


def ref_exists(repo: Path, ref: str) -> bool:
    return git('rev-parse', '--verify', '--quiet', f'{ref}^{{commit}}', cwd=repo, check=False).returncode == 0


def worktree_add(repo: Path, path: Path, branch: str, *, new_branch: bool, base: str | None,
                 progress: Progress | None = None) -> None:
    """`git worktree add`, reporting its checkout ("Updating files") to `progress` as it goes."""
    path.parent.mkdir(parents=True, exist_ok=True)
    quiet = [] if progress else ['--quiet']
    if new_branch:
        git('worktree', 'add', *quiet, '-b', branch, '--', str(path), *([base] if base else []), cwd=repo,
            progress=progress)
    else:
        git('worktree', 'add', *quiet, '--', str(path), branch, cwd=repo, progress=progress)


def worktree_remove(repo: Path, path: Path) -> None:
    if path.exists():
        git('worktree', 'remove', '--force', '--', str(path), cwd=repo)
    git('worktree', 'prune', cwd=repo, check=False)


def _reason(text: str) -> str:
    """What git said went wrong: its first `fatal:`/`error:` line (the rest is often generic advice), else its last."""
    lines = [line.strip() for line in text.strip().splitlines() if line.strip()]
    said = next((line for line in lines if line.startswith(('fatal: ', 'error: '))), lines[-1] if lines else '')
    said = said.removeprefix('fatal: ').removeprefix('error: ')
    return f'{said.rstrip(".")}.' if said else ''
