"""What every agent runtime adapter speaks: the run request, transcript events, the outcome and the adapter API.

An adapter turns a `RunRequest` into a command line (`build`), reads the CLI's stdout one line at a time
(`parse_line`) and decides how the run ended (`outcome`). `agor.runtimes.runner.run` drives them.
"""
from __future__ import annotations

import json
import os
import re
from abc import ABC, abstractmethod
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Literal

from agor.errors import InvalidInput

EventKind = Literal['assistant', 'tool_call', 'tool_result', 'error', 'usage', 'system']
Status = Literal['completed', 'failed', 'stopped']
DEFAULT_MAX_RETRIES = 2
MCP_NAME = re.compile(r'^[A-Za-z0-9_-]{1,64}$')


@dataclass(frozen=True)
class McpServer:
    """An MCP server for one run: stdio (`command`, `args`, `env`) or remote (`url`, `headers`; http or sse)."""
    name: str
    transport: Literal['stdio', 'http', 'sse'] = 'stdio'
    command: str | None = None
    args: list[str] = field(default_factory=list)
    env: dict[str, str] = field(default_factory=dict)
    url: str | None = None
    headers: dict[str, str] = field(default_factory=dict)

    def __post_init__(self) -> None:
        if not MCP_NAME.match(self.name):
            raise InvalidInput(f'MCP server name {self.name!r}: use letters, digits, "-" and "_" (at most 64)')
        if self.transport == 'stdio' and not self.command:
            raise InvalidInput(f'MCP server {self.name}: a stdio server needs a command')
        if self.transport != 'stdio' and not self.url:
            raise InvalidInput(f'MCP server {self.name}: an {self.transport} server needs a URL')


@dataclass
class RunRequest:
    """One turn of an agent session.

    `env` is the complete environment to run with (the caller merges it: PATH, HOME, provider keys and base URLs,
    the creator's variables). `home` is a per-user state directory the adapter keeps the CLI's config and
    conversations in, so a later turn can resume with `resume_id` (the CLI's own session or thread id).
    """
    prompt: str
    cwd: Path
    home: Path
    env: dict[str, str]
    model: str | None = None
    permission_mode: str | None = None
    extra_args: list[str] = field(default_factory=list)
    resume_id: str | None = None
    mcp_servers: list[McpServer] = field(default_factory=list)


@dataclass
class TranscriptEvent:
    """One transcript entry. An `assistant` event with `data['delta']` continues the previous assistant text.
    `data['resume_id']`, when present, is the CLI's session id to resume the conversation with."""
    kind: EventKind
    text: str = ''
    data: dict[str, Any] = field(default_factory=dict)


@dataclass
class RunOutcome:
    status: Status
    resume_id: str | None = None
    error: str | None = None
    stderr_tail: list[str] = field(default_factory=list)
    reply: str = ''  # the last assistant message


@dataclass
class LaunchSpec:
    argv: list[str]  # argv[0] is the binary's name; the runner puts the resolved path there
    env: dict[str, str]
    files_written: list[Path] = field(default_factory=list)
    merge_stderr: bool = False
    stdin: str | None = None  # written to the CLI's stdin, which is /dev/null otherwise


class Runtime(ABC):
    name: str
    label: str
    binary: str
    package: str | None = None  # the pinned npm package
    permission_modes: dict[str, list[str]] = {'default': []}  # mode -> extra CLI arguments

    @property
    def install_command(self) -> str | None:
        return f'npm i -g {self.package}' if self.package else None

    def missing_message(self) -> str:
        return f'{self.label} CLI (`{self.binary}`) is not installed. Install it with: {self.install_command}'

    @abstractmethod
    def build(self, request: RunRequest) -> LaunchSpec:
        """The command line and environment for one turn; may write config files under `request.home`."""

    @abstractmethod
    def parse_line(self, line: str) -> list[TranscriptEvent]:
        """Transcript events from one line of the CLI's stdout."""

    def outcome(self, exit_code: int, events: list[TranscriptEvent], stderr_tail: list[str]) -> RunOutcome:
        resume_id = next((e.data['resume_id'] for e in reversed(events) if e.data.get('resume_id')), None)
        errors = [event.text for event in events if event.kind == 'error']
        reply = last_reply(events)
        if exit_code == 0 and not errors:
            return RunOutcome('completed', resume_id, reply=reply)
        last_stderr = next((line for line in reversed(stderr_tail) if line.strip()), None)
        error = errors[-1] if errors else last_stderr or f'{self.label} exited with code {exit_code}'
        return RunOutcome('failed', resume_id, error, stderr_tail, reply)

    def permission_args(self, request: RunRequest) -> list[str]:
        mode = request.permission_mode or 'default'
        if mode not in self.permission_modes:
            raise InvalidInput(f'{self.label} has no permission mode {mode!r}; '
                               f'choose one of {", ".join(self.permission_modes)}')
        return self.permission_modes[mode]



class JsonRuntime(Runtime):
    """A CLI that prints one JSON object per line."""

    def parse_line(self, line: str) -> list[TranscriptEvent]:
        """Events from one stdout line. Lines that are not JSON objects are kept as raw `system` events."""
        line = line.strip()
        if not line:
            return []
        try:
            obj = json.loads(line)
        except ValueError:
            obj = None
        if not isinstance(obj, dict):
            return [TranscriptEvent('system', line, {'raw': True})]
        return self.parse_event(obj)

    @abstractmethod
    def parse_event(self, obj: dict[str, Any]) -> list[TranscriptEvent]:
        """Events from one JSON line of the CLI's output."""


def last_reply(events: list[TranscriptEvent]) -> str:
    """The text of the last assistant message (deltas joined)."""
    parts: list[str] = []
    for event in events:
        if event.kind == 'assistant' and event.data.get('delta'):
            parts.append(event.text)  # in place: a copy per delta made a 100k-line run quadratic
        elif event.kind == 'assistant':
            parts = [event.text]
    return ''.join(parts)


def max_retries(request: RunRequest) -> int:
    """Retries of a failed model request: AGOR_AGENT_MAX_RETRIES from the run's env, then the app's, else 2."""
    value = request.env.get('AGOR_AGENT_MAX_RETRIES') or os.environ.get('AGOR_AGENT_MAX_RETRIES')
    return int(value) if value and value.isdigit() else DEFAULT_MAX_RETRIES


def write_private(path: Path, text: str) -> Path:
    """Write a config file only its owner can read (it may hold MCP headers or env values)."""
    path.parent.mkdir(parents=True, exist_ok=True)
    fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
    with os.fdopen(fd, 'w') as handle:
        handle.write(text)
    os.chmod(path, 0o600)
    return path


def text_of(content: Any) -> str:
    """Text of a tool result / message content that is a string or a list of `{type: text, text}` parts."""
    if isinstance(content, str):
        return content
    if isinstance(content, list):
        return '\n'.join(part.get('text', '') for part in content if isinstance(part, dict) and 'text' in part)
    return '' if content is None else json.dumps(content)


def usage_text(data: dict[str, Any]) -> str:
    text = f'{data.get("input_tokens") or 0} tokens in, {data.get("output_tokens") or 0} out'
    return text + (f', ${data["cost_usd"]:.4f}' if data.get('cost_usd') else '')
