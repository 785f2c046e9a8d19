"""What every agent runtime adapter speaks: the run request, transcript events, the outcome and the adapter API.

An adapter turns a `RunRequest` into a command line (`build`), reads the CLI's stdout one line at a time
(`parse_line`) and decides how the run ended (`outcome`). `agor.runtimes.cli_process.run` drives them.
"""
from __future__ import annotations

import functools
import json
import os
import re
import tomllib
from abc import ABC, abstractmethod
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Literal, NamedTuple

from agor.errors import InvalidInput
from agor.unix_accounts import Account

EventKind = Literal['assistant', 'tool_call', 'tool_result', 'error', 'usage', 'system']
Status = Literal['completed', 'failed', 'stopped']
DEFAULT_MAX_RETRIES = 2
PERMISSION_LABELS = {'default': 'Ask (the CLI\'s default)', 'auto_edit': 'Edit without asking',
                     'bypass': 'Bypass: anything goes', 'plan': 'Plan: read only'}
MCP_NAME = re.compile(r'^[A-Za-z0-9_-]{1,64}$')
APP_MCP_SERVER = 'agor'  # the app's own MCP server in every run (agor.agent_tools): no other server takes its name
MAX_EXTRA_ARGS = 20
CATALOG = Path(__file__).with_name('clis.toml')  # every runtime's facts (see its header); adapters hold behaviour
CATALOG_FIELDS = {'label', 'binary', 'package', 'default_permission_mode', 'unattended', 'key_names', 'login_files',
                  'models', 'permission_modes', 'refused_flags'}


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
    conversations in, so a later turn can resume with `resume_id` (the CLI's own session or thread id). `account`
    is the Unix account the CLI runs as and `home` belongs to (None: the app's own). `max_retries` is how often the
    CLI retries a failed model request; `cli_dir` the npm prefix with the pinned CLIs (None: PATH only).
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
    account: Account | None = None
    totals_before: dict[str, Any] | None = None  # `data['totals']` of the session's last usage event (see Turn)
    max_retries: int = DEFAULT_MAX_RETRIES
    cli_dir: Path | None = None
    secrets: list[str] = field(default_factory=list)  # the creator's secret values in `env`: kept out of transcripts
    # (MCP server, tool) that answers the CLI's permission requests in a mode that asks (Claude Code's
    # --permission-prompt-tool): the app's own server, so that a person answers in the session panel
    permission_prompt: tuple[str, str] | None = None


@dataclass
class TranscriptEvent:
    """One transcript entry. An `assistant` event with `data['delta']` continues the previous assistant text.
    `data['resume_id']`, when present, is the CLI's session id to resume the conversation with."""
    kind: EventKind
    text: str = ''
    data: dict[str, Any] = field(default_factory=dict)


@dataclass
class Turn:
    """What the parser remembers during one run (an adapter is shared by all runs). `totals_before` are the totals a
    CLI reported after the previous turn of the same CLI session: Claude Code reports the session's cost so far and
    Codex the thread's tokens so far, so a turn's own figures are the difference (`own_usage`)."""
    totals_before: dict[str, Any] = field(default_factory=dict)
    mcp_servers: list[str] = field(default_factory=list)  # the run's MCP server names (to read tool names)
    resume_id: str | None = None
    streamed: set[str] = field(default_factory=set)  # messages whose text arrived as deltas
    new_text: bool = False  # the next text delta starts a new assistant entry
    failure: str | None = None  # a failed model request the CLI may still retry
    attempts: int = 0


@dataclass
class RunOutcome:
    status: Status
    resume_id: str | None = None
    error: str | None = None
    stderr_tail: list[str] = field(default_factory=list)
    reply: str = ''  # the last assistant message


@dataclass
class LaunchSpec:
    argv: list[str]  # argv[0] is the binary's name; cli_process puts the resolved path there
    env: dict[str, str]
    files_written: list[Path] = field(default_factory=list)
    merge_stderr: bool = False
    stdin: str | None = None  # written to the CLI's stdin, which is /dev/null otherwise


@functools.cache
def catalog() -> dict[str, Any]:
    """clis.toml: the runtimes by name, and `reasons` (why extra arguments are refused)."""
    with CATALOG.open('rb') as file:
        return tomllib.load(file)


class Mode(NamedTuple):
    """A permission mode: the extra CLI arguments that select it, and one line that explains it on the form."""
    args: list[str]
    help: str


class Runtime(ABC):
    """An adapter: `name` picks its entry in clis.toml, which gives the other attributes (`__init_subclass__`)."""
    name: str
    label: str
    binary: str
    package: str | None  # the pinned npm package
    permission_modes: dict[str, Mode]
    default_permission_mode: str  # the safe mode a session gets unless its creator picks another
    unattended: str  # how its modes behave with nobody at a terminal (the new-session form says it under the modes)
    models: list[str]  # known model names (the form offers them; any other name is passed on as typed)
    refused_flags: dict[str, str]  # extra arguments refused: flag -> why (see check_extra_args)
    key_names: tuple[str, ...]  # a run needs one of these variables (a provider key); the first is the one to set
    login_files: tuple[str, ...]  # or the CLI's own login: one of these files in the user's agent home
    stderr_noise: re.Pattern[str] | None = None  # stderr lines not worth keeping for the error details (behaviour)

    def __init_subclass__(cls, **kwargs: Any) -> None:
        super().__init_subclass__(**kwargs)
        if 'name' not in cls.__dict__:  # an abstract base (JsonRuntime)
            return
        facts = catalog().get(cls.name)
        if facts is None:
            raise TypeError(f'{CATALOG.name} has no entry [{cls.name}]')
        if unknown := set(facts) - CATALOG_FIELDS:  # a misspelt field would leave the default silently
            raise TypeError(f'{CATALOG.name} [{cls.name}]: no such field {", ".join(sorted(unknown))}')
        cls.label, cls.binary, cls.package = facts['label'], facts['binary'], facts.get('package')
        cls.default_permission_mode = facts.get('default_permission_mode', 'default')
        cls.unattended = facts['unattended']
        cls.key_names, cls.login_files = tuple(facts.get('key_names', ())), tuple(facts.get('login_files', ()))
        cls.models = facts.get('models', [])
        cls.permission_modes = {mode: Mode(**entry) for mode, entry in facts['permission_modes'].items()}
        reasons = catalog()['reasons']
        cls.refused_flags = {flag: reasons.get(why, why)
                             for why, flags in facts.get('refused_flags', {}).items() for flag in flags.split()}

    @property
    def install_command(self) -> str | None:
        return f'npm i -g {self.package}' if self.package else None

    def logged_in(self, home: Path) -> bool:
        """The CLI's own login (instead of a provider key), kept in the user's agent home."""
        return any((home / path).is_file() for path in self.login_files)

    def missing_message(self) -> str:
        return f'{self.label} CLI (`{self.binary}`) is not installed. Install it with: {self.install_command}'

    @abstractmethod
    def build(self, request: RunRequest) -> LaunchSpec:
        """The command line and environment for one turn; may write config files under `request.home`."""

    @abstractmethod
    def parse_line(self, line: str, turn: Turn) -> list[TranscriptEvent]:
        """Transcript events from one line of the CLI's stdout."""

    def parse_stderr(self, line: str, turn: Turn) -> list[TranscriptEvent]:
        """Transcript events from one line of the CLI's stderr (retries some CLIs only log there)."""
        return []

    def outcome(self, exit_code: int, events: list[TranscriptEvent], stderr_tail: list[str]) -> RunOutcome:
        """How the run ended. The error is one sentence: the CLI's own error event, else the last stderr line that
        says something (no stack frame, no warning), else the exit code; `stderr_tail` keeps the rest."""
        resume_id = next((e.data['resume_id'] for e in reversed(events) if e.data.get('resume_id')), None)
        errors = [event.text for event in events if event.kind == 'error']
        reply = last_reply(events)
        if exit_code == 0 and not errors:
            return RunOutcome('completed', resume_id, reply=reply)
        error = errors[-1] if errors else headline(stderr_tail) or f'{self.label} exited with code {exit_code}'
        return RunOutcome('failed', resume_id, error, stderr_tail, reply)

    def check_extra_args(self, args: list[str]) -> list[str]:
        """`args` when a user may add them to every run; InvalidInput naming the first one refused and why. A flag
        is refused as `--flag`, `--flag=value` and, for one-letter flags, `-xvalue`; `--` is refused (what follows
        it would be read as the prompt)."""
        if len(args) > MAX_EXTRA_ARGS or any(len(arg) > 500 or not arg.isprintable() for arg in args):
            raise InvalidInput(f'At most {MAX_EXTRA_ARGS} extra arguments of at most 500 printable characters each.')
        for arg in args:
            flag = '--' if arg == '--' else arg.split('=', 1)[0] if arg.startswith('--') else \
                arg[:2] if arg.startswith('-') else arg
            why = catalog()['reasons']['reserved'] if flag == '--' else self.refused_flags.get(flag)
            if why:
                raise InvalidInput(f'{self.label} extra arguments cannot use {flag}: {why}.')
        return args

    def permission_args(self, request: RunRequest) -> list[str]:
        mode = request.permission_mode or self.default_permission_mode
        if mode not in self.permission_modes:
            raise InvalidInput(f'{self.label} has no permission mode {mode!r}; '
                               f'choose one of {", ".join(self.permission_modes)}')
        return self.permission_modes[mode].args

    def mode_help(self, mode: str | None) -> str:
        """The line that explains `mode` on the form ('' for a mode it does not have)."""
        return self.permission_modes[mode].help if mode in self.permission_modes else ''



class JsonRuntime(Runtime):
    """A CLI that prints one JSON object per line."""

    def parse_line(self, line: str, turn: Turn) -> list[TranscriptEvent]:
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
        return self.parse_event(obj, turn)

    @abstractmethod
    def parse_event(self, obj: dict[str, Any], turn: Turn) -> list[TranscriptEvent]:
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


def env_name(server: str, what: str, index: int) -> str:
    return f'AGOR_MCP_{re.sub(r"[^A-Z0-9]", "_", server.upper())}_{what}_{index}'


def headers_via_env(server: McpServer, env: dict[str, str], reference: str) -> dict[str, str]:
    """A remote server's headers as references to variables of the CLI's env (`reference` formats a variable's
    name, e.g. '${{{}}}'), their values put into `env`: the config file the CLI reads then holds no secret (a token of
    the app's MCP server, a user's API key), and the values live only in the process's environment."""
    headers = {}
    for index, (header, value) in enumerate(server.headers.items()):
        env[env_name(server.name, 'HEADER', index)] = value
        headers[header] = reference.format(env_name(server.name, 'HEADER', index))
    return headers


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


def tool_call(tool: str, args: Any, call_id: str | None, *, command: str | None = None,
              server: str | None = None) -> TranscriptEvent:
    """A tool call as the transcript shows it: a shell `command`, or an MCP `server`'s `tool` with its `input`, or
    another tool with its input. The text says it in one line."""
    if command is not None:
        text = f'$ {command}'
    else:
        name = f'{server} › {tool}' if server else tool
        text = f'{name} {shorten(json.dumps(args, ensure_ascii=False))}' if args else name
    data = {'tool': tool, 'input': args, 'id': call_id, 'command': command, 'server': server}
    return TranscriptEvent('tool_call', text, {key: value for key, value in data.items() if value is not None})


def mcp_tool(name: str, prefix: str, turn: Turn) -> tuple[str | None, str]:
    """(server, tool) from a CLI's name for an MCP tool, `<prefix><server>_<tool>`; (None, name) for other tools."""
    if not name.startswith(prefix):
        return None, name
    rest = name[len(prefix):]
    server = max((s for s in turn.mcp_servers if rest.startswith(f'{s}_')), key=len, default=None)
    return (server, rest[len(server) + 1:]) if server else (None, name)


def shorten(text: str, limit: int = 160) -> str:
    return text if len(text) <= limit else text[:limit - 1] + '…'


def usage_event(data: dict[str, Any]) -> TranscriptEvent:
    """The turn's usage: `input_tokens`, `output_tokens`, `cost_usd` (the turn's own), plus what else `data` holds."""
    return TranscriptEvent('usage', usage_text(data), data)


def own_usage(turn: Turn, resume_id: str | None, totals: dict[str, float | None]) -> dict[str, Any]:
    """The turn's own figures from the session totals a CLI reports: the totals minus those the previous turn of the
    same CLI session reported. Returns the figures and, under `totals`, what to remember for the next turn."""
    before = turn.totals_before if resume_id and turn.totals_before.get('resume_id') == resume_id else {}
    own: dict[str, Any] = {}
    for key, value in totals.items():
        previous = before.get(key) or 0
        own[key] = value - previous if isinstance(value, (int, float)) and value >= previous else value
        if isinstance(own[key], float):
            own[key] = round(own[key], 8)
    return {**own, 'totals': {'resume_id': resume_id, **totals}}


STACK_FRAME = re.compile(r'^\s|^[\W_]*$')  # indented (frames, dumps), or no word at all
WARNING = re.compile(r'^\W*(warn(ing)?\b|deprecat)', re.IGNORECASE)


def headline(stderr_tail: list[str]) -> str | None:
    """The last stderr line that says something: not blank, not part of a stack trace or an indented dump, no
    warning."""
    return next((line.strip() for line in reversed(stderr_tail)
                 if not STACK_FRAME.match(line) and not WARNING.match(line)), None)
