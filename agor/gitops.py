"""Thin, safe wrappers around the git CLI (run from worker threads, never on the event loop)."""
from __future__ import annotations

import os
import subprocess
from pathlib import Path
from urllib.parse import unquote, urlsplit

from .errors import InvalidInput

TIMEOUT = 120
# no ext:: or fd:: transports, no credential prompts, no pager
_ENV = {'GIT_TERMINAL_PROMPT': '0', 'GIT_ALLOW_PROTOCOL': 'file:git:http:https:ssh', 'GIT_PAGER': 'cat'}


class GitError(InvalidInput):
    pass


def git(*args: str, cwd: Path | None = None, check: bool = True) -> subprocess.CompletedProcess[str]:
    try:
        result = subprocess.run(['git', *args], cwd=cwd, capture_output=True, text=True, timeout=TIMEOUT,
                                env={**os.environ, **_ENV}, stdin=subprocess.DEVNULL)
    except FileNotFoundError:
        raise GitError('git is not installed on the server (apt-get install git).') from None
    except subprocess.TimeoutExpired:
        raise GitError(f'git {args[0]} took longer than {TIMEOUT} s and was stopped.') from None
    if check and result.returncode != 0:
        raise GitError(_last_line(result.stderr) or f'git {args[0]} failed.')
    return result


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


def clone(source: str, target: Path) -> None:
    """Clone `source` (checked with clone_source_path first) into `target`."""
    target.parent.mkdir(parents=True, exist_ok=True)
    git('clone', '--quiet', '--', source, str(target))


def branch_exists(repo: Path, branch: str) -> bool:
    return git('show-ref', '--verify', '--quiet', f'refs/heads/{branch}', cwd=repo, check=False).returncode == 0


def check_branch_name(branch: str) -> str:
    branch = branch.strip()
    if not branch or branch.startswith('-') or git('check-ref-format', '--branch', branch, check=False).returncode:
        raise InvalidInput(f'{branch!r} is not a valid branch name.')
    return branch


def ref_exists(repo: Path, ref: str) -> bool:
    return git('rev-parse', '--verify', '--quiet', f'{ref}^{{commit}}', cwd=repo, check=False).returncode == 0


def worktree_add(repo: Path, path: Path, branch: str, *, new_branch: bool, base: str | None) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    if new_branch:
        git('worktree', 'add', '--quiet', '-b', branch, '--', str(path), *([base] if base else []), cwd=repo)
    else:
        git('worktree', 'add', '--quiet', '--', str(path), branch, cwd=repo)


def worktree_remove(repo: Path, path: Path) -> None:
    if path.exists():
        git('worktree', 'remove', '--force', '--', str(path), cwd=repo)
    git('worktree', 'prune', cwd=repo, check=False)


def _last_line(text: str) -> str:
    lines = [line.strip() for line in text.strip().splitlines() if line.strip()]
    return lines[-1].removeprefix('fatal: ').removeprefix('error: ') if lines else ''
