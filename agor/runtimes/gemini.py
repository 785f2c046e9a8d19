"""Gemini CLI: `gemini --output-format stream-json --skip-trust --prompt=PROMPT [--resume ID]`.

The key and endpoint come from the env (GEMINI_API_KEY, optionally GOOGLE_GEMINI_BASE_URL), but headless runs also
need `security.auth.selectedType = gemini-api-key` in the user settings, which this adapter writes to
`<home>/gemini/.gemini/settings.json` (GEMINI_CLI_HOME) together with the retry limit and the MCP servers.
"""
from __future__ import annotations

import json
import re
from typing import Any

from .base import (
    JsonRuntime,
    LaunchSpec,
    McpServer,
    RunRequest,
    TranscriptEvent,
    max_retries,
    usage_text,
    write_private,
)


class GeminiRuntime(JsonRuntime):
    name = 'gemini'
    label = 'Gemini'
    binary = 'gemini'
    package = '@google/gemini-cli@0.61.0'
    permission_modes = {
        'default': [],  # headless, tools that need a confirmation (the shell) are not offered
        'auto_edit': ['--approval-mode', 'auto_edit'],
        'bypass': ['--approval-mode', 'yolo'],
        'plan': ['--approval-mode', 'plan'],
    }

    def build(self, request: RunRequest) -> LaunchSpec:
        gemini_home = request.home / 'gemini'
        (gemini_home / 'tmp').mkdir(parents=True, exist_ok=True)
        settings = {
            'security': {'auth': {'selectedType': 'gemini-api-key'}},
            'privacy': {'usageStatisticsEnabled': False},
            'general': {'maxAttempts': max_retries(request) + 1},
            'mcpServers': {server.name: mcp_entry(server) for server in request.mcp_servers},
        }
        settings_file = write_private(gemini_home / '.gemini' / 'settings.json', json.dumps(settings, indent=2))
        # TMPDIR: the CLI drops an error report file in the temp dir on every API error.
        env = {**request.env, 'GEMINI_CLI_HOME': str(gemini_home), 'TMPDIR': str(gemini_home / 'tmp')}
        argv = ['gemini', '--output-format', 'stream-json', '--skip-trust', *self.permission_args(request)]
        if request.model:
            argv += ['--model', request.model]
        if request.resume_id:
            argv += ['--resume', request.resume_id]
        return LaunchSpec([*argv, *request.extra_args, f'--prompt={request.prompt}'], env, [settings_file])

    def parse_event(self, obj: dict[str, Any]) -> list[TranscriptEvent]:
        kind = obj.get('type')
        if kind == 'init':
            return [TranscriptEvent('system', f'Gemini session started (model {obj.get("model")})',
                                    {'resume_id': obj.get('session_id'), 'model': obj.get('model')})]
        if kind == 'message' and obj.get('role') == 'assistant':
            return [TranscriptEvent('assistant', obj.get('content', ''), {'delta': True} if obj.get('delta') else {})]
        if kind == 'tool_use':
            return [TranscriptEvent('tool_call', obj.get('tool_name', ''), {
                'tool': obj.get('tool_name'), 'input': obj.get('parameters'), 'id': obj.get('tool_id')})]
        if kind == 'tool_result':
            failed = obj.get('status') != 'success'
            text = (obj.get('error') or {}).get('message', '') if failed and obj.get('error') else obj.get('output', '')
            return [TranscriptEvent('tool_result', text, {'id': obj.get('tool_id'), 'is_error': failed})]
        if kind == 'result':
            stats = obj.get('stats') or {}
            data = {'input_tokens': stats.get('input_tokens'), 'output_tokens': stats.get('output_tokens'),
                    'duration_ms': stats.get('duration_ms')}
            events = [TranscriptEvent('usage', usage_text(data), data)]
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


def mcp_entry(server: McpServer) -> dict[str, Any]:
    if server.transport == 'stdio':
        return {'command': server.command, 'args': server.args, 'env': server.env, 'trust': True}
    url_key = 'httpUrl' if server.transport == 'http' else 'url'
    return {url_key: server.url, 'headers': server.headers, 'trust': True}
