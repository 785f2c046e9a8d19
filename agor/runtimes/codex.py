"""Codex CLI: `codex exec --json --skip-git-repo-check [resume ID] -- PROMPT`.

OPENAI_BASE_URL does not redirect Codex's built-in `openai` provider, so when it is set the run uses a provider
of its own, given on the command line (`--ignore-user-config -c model_provider=agor -c model_providers.agor=…`),
with the key read from OPENAI_API_KEY. Without it Codex uses its built-in provider (OPENAI_API_KEY / CODEX_API_KEY).

`exec --json` prints an agent message once it is complete (no text deltas), and `turn.completed` carries the thread's
token totals so far (`own_usage` makes them the turn's own).
"""
from __future__ import annotations

import json
import os
import re
import shlex
from typing import Any

from agor.errors import InvalidInput

from .base import (
    JsonRuntime, LaunchSpec, McpServer, RunRequest, TranscriptEvent, Turn, headers_via_env, own_usage, text_of,
    tool_call, usage_event
)

RECONNECTING = re.compile(r'^Reconnecting\.\.\. (\d+)/(\d+)')


def toml(value: Any) -> str:
    """A TOML value for `-c key=value` (JSON strings, numbers, booleans and arrays are valid TOML)."""
    if isinstance(value, dict):
        return '{' + ','.join(f'{json.dumps(key)}={toml(item)}' for key, item in value.items()) + '}'
    return json.dumps(value)


class CodexRuntime(JsonRuntime):
    name = 'codex'

    def build(self, request: RunRequest) -> LaunchSpec:
        codex_home = request.home / 'codex'
        codex_home.mkdir(parents=True, exist_ok=True)
        env = {**request.env, 'CODEX_HOME': str(codex_home)}
        argv = ['codex', 'exec', '--json', '--skip-git-repo-check', *self.permission_args(request)]
        if request.env.get('OPENAI_BASE_URL'):
            retries = request.max_retries
            provider = {'name': 'Agor', 'base_url': request.env['OPENAI_BASE_URL'], 'env_key': 'OPENAI_API_KEY',
                        'wire_api': 'responses', 'request_max_retries': retries, 'stream_max_retries': retries}
            argv += ['--ignore-user-config', '-c', 'model_provider="agor"',
                     '-c', f'model_providers.agor={toml(provider)}']
        for server in request.mcp_servers:
            argv += mcp_args(server, env)
        if request.model:
            argv += ['-m', request.model]
        argv += request.extra_args
        if request.resume_id:
            argv += ['resume', request.resume_id]
        return LaunchSpec([*argv, '--', request.prompt], env)

    def parse_event(self, obj: dict[str, Any], turn: Turn) -> list[TranscriptEvent]:
        kind = obj.get('type')
        if kind == 'thread.started':
            turn.resume_id = obj.get('thread_id')
            return [TranscriptEvent('system', 'Codex thread started', {'resume_id': obj.get('thread_id')})]
        if kind in ('item.started', 'item.completed'):
            return _item(obj['item'], kind == 'item.started')
        if kind == 'turn.completed':
            usage = obj.get('usage') or {}
            totals = {'input_tokens': usage.get('input_tokens'), 'output_tokens': usage.get('output_tokens')}
            return [usage_event({**own_usage(turn, turn.resume_id, totals),
                                 'cached_input_tokens': usage.get('cached_input_tokens')})]
        if kind == 'turn.failed':
            return [TranscriptEvent('error', (obj.get('error') or {}).get('message', 'Codex turn failed'))]
        if kind == 'error':
            message = obj.get('message', '')
            if RECONNECTING.match(message):  # "Reconnecting... 1/2 (<the provider's message>)"
                return [TranscriptEvent('system', message, {'retry': True})]
            return [TranscriptEvent('error', message)]  # turn.failed repeats it: the outcome keeps one
        return []


def _item(item: dict[str, Any], started: bool) -> list[TranscriptEvent]:
    kind, item_id = item.get('type'), item.get('id')
    if kind == 'command_execution':
        if started:
            command = item.get('command', '')
            return [tool_call('shell', {'command': command}, item_id, command=unwrap_shell(command))]
        return [TranscriptEvent('tool_result', item.get('aggregated_output', ''),
                                {'id': item_id, 'exit_code': item.get('exit_code'),
                                 'is_error': item.get('exit_code') not in (0, None)})]
    if kind == 'mcp_tool_call':
        if started:
            return [tool_call(item.get('tool', ''), item.get('arguments'), item_id, server=item.get('server'))]
        error = item.get('error')
        text = (error or {}).get('message', str(error)) if error else text_of((item.get('result') or {}).get('content'))
        return [TranscriptEvent('tool_result', text, {'id': item_id, 'is_error': bool(error)})]
    if started:
        return []
    if kind == 'agent_message':
        return [TranscriptEvent('assistant', item.get('text', ''))]
    if kind == 'reasoning':
        return [TranscriptEvent('system', item.get('text', ''), {'thinking': True})]
    if kind == 'file_change':
        paths = ', '.join(change.get('path', '') for change in item.get('changes', []))
        return [TranscriptEvent('tool_result', f'Changed {paths}', {'id': item_id, 'changes': item.get('changes')})]
    if kind == 'error':  # non-fatal, e.g. "Model metadata for `x` not found"
        return [TranscriptEvent('system', item.get('message', ''), {'warning': True})]
    return []


def unwrap_shell(command: str) -> str:
    """`/bin/bash -lc 'git status'` -> `git status` (Codex wraps every command in a login shell)."""
    try:
        argv = shlex.split(command)
    except ValueError:
        return command
    if len(argv) == 3 and argv[1] in ('-c', '-lc') and os.path.basename(argv[0]) in ('bash', 'sh', 'zsh'):
        return argv[2]
    return command


def mcp_args(server: McpServer, env: dict[str, str]) -> list[str]:
    """`-c mcp_servers.<name>.…` overrides. Secret values go into the env (`env_vars`, `env_http_headers`), which
    other local users cannot read, never onto the command line, which they can."""
    if server.transport == 'sse':
        raise InvalidInput(f'Codex cannot use the SSE MCP server {server.name}; it speaks stdio and streamable HTTP')
    prefix = f'mcp_servers.{server.name}'
    # approve: else refused (the approval policy is never); required: the first turn waits for the server's tools (or
    # fails saying it did not start) instead of starting without them while the server is still loading
    args = ['-c', f'{prefix}.default_tools_approval_mode="approve"', '-c', f'{prefix}.required=true']
    if server.transport == 'stdio':
        env.update(server.env)
        args += ['-c', f'{prefix}.command={toml(server.command)}', '-c', f'{prefix}.args={toml(server.args)}',
                 '-c', f'{prefix}.env_vars={toml(list(server.env))}']
        return args
    headers = headers_via_env(server, env, '{}')
    return args + ['-c', f'{prefix}.url={toml(server.url)}', '-c', f'{prefix}.env_http_headers={toml(headers)}']
