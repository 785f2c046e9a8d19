"""Gemini CLI: `gemini --output-format stream-json --skip-trust --prompt=PROMPT [--resume ID]`.

The key and endpoint come from the env (GEMINI_API_KEY, optionally GOOGLE_GEMINI_BASE_URL), but headless runs also
need `security.auth.selectedType = gemini-api-key` in the user settings, which this adapter writes to
`<home>/gemini/.gemini/settings.json` (GEMINI_CLI_HOME) together with the retry limit and the MCP servers.

Headless, Gemini refuses every tool that would ask for a confirmation, the shell included, so `auto_edit` adds a user
policy (`.gemini/policies/agor.toml`) that allows the shell tool in that mode. Retries are only logged on stderr
("Attempt 1 failed with status 500. Retrying with backoff... {…}"): `parse_stderr` turns them into events.
"""
from __future__ import annotations

import json
import re
from typing import Any

from .base import (
    JsonRuntime, LaunchSpec, McpServer, RunRequest, TranscriptEvent, Turn, headers_via_env, mcp_tool, tool_call,
    usage_event, write_private
)

RETRYING = re.compile(r'^Attempt (\d+) failed(?: with status (\d+))?\. Retrying with backoff\.\.\.(.*)$')
SHELL_POLICY = '''# Written by Agor: in auto_edit mode the shell runs without asking (an unattended run cannot ask).
[[rule]]
toolName = "run_shell_command"
decision = "allow"
priority = 100
modes = ["autoEdit"]
'''


class GeminiRuntime(JsonRuntime):
    name = 'gemini'

    def build(self, request: RunRequest) -> LaunchSpec:
        gemini_home = request.home / 'gemini'
        (gemini_home / 'tmp').mkdir(parents=True, exist_ok=True)
        # TMPDIR (env, below): the CLI drops an error report file in the temp dir on every API error.
        settings: dict[str, Any] = {
            'security': {'auth': {'selectedType': 'gemini-api-key'}},
            'privacy': {'usageStatisticsEnabled': False},
            'general': {'maxAttempts': request.max_retries + 1},
        }
        env = {**request.env, 'GEMINI_CLI_HOME': str(gemini_home), 'TMPDIR': str(gemini_home / 'tmp')}
        settings['mcpServers'] = {server.name: mcp_entry(server, env) for server in request.mcp_servers}
        settings_file = write_private(gemini_home / '.gemini' / 'settings.json', json.dumps(settings, indent=2))
        policy_file = write_private(gemini_home / '.gemini' / 'policies' / 'agor.toml', SHELL_POLICY)
        argv = ['gemini', '--output-format', 'stream-json', '--skip-trust', *self.permission_args(request)]
        if request.model:
            argv += ['--model', request.model]
        if request.resume_id:
            argv += ['--resume', request.resume_id]
        return LaunchSpec([*argv, *request.extra_args, f'--prompt={request.prompt}'], env, [settings_file, policy_file])

    def parse_stderr(self, line: str, turn: Turn) -> list[TranscriptEvent]:
        found = RETRYING.match(line.strip())
        if not found:
            return []
        attempt, status, rest = found.groups()
        reason = api_error(rest) if '{' in rest else f'status {status}' if status else rest.strip() or 'an error'
        text = f'Attempt {attempt} failed ({reason}); retrying'
        return [TranscriptEvent('system', text, {'retry': True, 'status': int(status) if status else None})]

    def parse_event(self, obj: dict[str, Any], turn: Turn) -> list[TranscriptEvent]:
        kind = obj.get('type')
        if kind == 'init':
            return [TranscriptEvent('system', f'Gemini session started (model {obj.get("model")})',
                                    {'resume_id': obj.get('session_id'), 'model': obj.get('model')})]
        if kind == 'message' and obj.get('role') == 'assistant':
            return [TranscriptEvent('assistant', obj.get('content', ''), {'delta': True} if obj.get('delta') else {})]
        if kind == 'tool_use':
            name, args = obj.get('tool_name', ''), obj.get('parameters') or {}
            if name == 'run_shell_command':
                return [tool_call(name, args, obj.get('tool_id'), command=args.get('command'))]
            server, tool = mcp_tool(name, 'mcp_', turn)
            return [tool_call(tool, args, obj.get('tool_id'), server=server)]
        if kind == 'tool_result':
            failed = obj.get('status') != 'success'
            text = (obj.get('error') or {}).get('message', '') if failed and obj.get('error') else obj.get('output', '')
            return [TranscriptEvent('tool_result', text, {'id': obj.get('tool_id'), 'is_error': failed})]
        if kind == 'result':
            stats = obj.get('stats') or {}
            data = {'input_tokens': stats.get('input_tokens'), 'output_tokens': stats.get('output_tokens'),
                    'duration_ms': stats.get('duration_ms')}
            events = [usage_event(data)]
            if obj.get('status') == 'error':
                events.append(TranscriptEvent('error', api_error((obj.get('error') or {}).get('message', ''))))
            return events
        if kind == 'error':  # warnings during the run; a fatal error ends in a result line
            return [TranscriptEvent('system', obj.get('message', ''), {'warning': True})]
        return []


def api_error(message: str) -> str:
    """'[API Error: {"error":{"code":401,"message":"…"}}]' -> 'API error 401: …' (other messages unchanged)."""
    found = re.search(r'\{.*\}', message)
    try:
        error = json.loads(found.group(0))['error'] if found else None
    except (ValueError, KeyError, TypeError):
        error = None
    if not isinstance(error, dict) or 'message' not in error:
        return message or 'Gemini failed'
    code = f' {error["code"]}' if error.get('code') else ''
    return f'API error{code}: {error["message"]}'


def mcp_entry(server: McpServer, env: dict[str, str]) -> dict[str, Any]:
    """A server of settings.json; header values stay in the env (the CLI expands `${VAR}` in its settings)."""
    if server.transport == 'stdio':
        return {'command': server.command, 'args': server.args, 'env': server.env, 'trust': True}
    url_key = 'httpUrl' if server.transport == 'http' else 'url'
    return {url_key: server.url, 'headers': headers_via_env(server, env, '${{{}}}'), 'trust': True}
