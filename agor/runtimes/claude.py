"""Claude Code: `claude -p --output-format stream-json --verbose -- PROMPT` (endpoint and key from the env:
ANTHROPIC_BASE_URL, ANTHROPIC_API_KEY or ANTHROPIC_AUTH_TOKEN, which the CLI reads itself)."""
from __future__ import annotations

import json
import os
from typing import Any

from .base import (
    JsonRuntime,
    LaunchSpec,
    McpServer,
    RunRequest,
    TranscriptEvent,
    max_retries,
    text_of,
    usage_text,
    write_private,
)


class ClaudeRuntime(JsonRuntime):
    name = 'claude-code'
    label = 'Claude Code'
    binary = 'claude'
    package = '@anthropic-ai/claude-code@2.1.331'
    permission_modes = {
        'default': [],
        'auto_edit': ['--permission-mode', 'acceptEdits'],
        'bypass': ['--permission-mode', 'bypassPermissions'],
        'plan': ['--permission-mode', 'plan'],
    }

    def build(self, request: RunRequest) -> LaunchSpec:
        config_dir = request.home / 'claude'
        config_dir.mkdir(parents=True, exist_ok=True)
        argv = ['claude', '-p', '--output-format', 'stream-json', '--verbose', *self.permission_args(request)]
        env = {'CLAUDE_CODE_MAX_RETRIES': str(max_retries(request)), 'CLAUDE_CODE_DISABLE_NONESSENTIAL_TRAFFIC': '1',
               **request.env, 'CLAUDE_CONFIG_DIR': str(config_dir)}
        if request.permission_mode == 'bypass' and request.account is None and os.geteuid() == 0:
            env['IS_SANDBOX'] = '1'  # otherwise: "cannot be used with root/sudo privileges"
        files = []
        if request.mcp_servers:
            config = {'mcpServers': {server.name: mcp_entry(server) for server in request.mcp_servers}}
            files.append(write_private(config_dir / 'agor-mcp.json', json.dumps(config)))
            argv += ['--mcp-config', str(files[0]), '--strict-mcp-config',
                     '--allowedTools', *(f'mcp__{server.name}' for server in request.mcp_servers)]
            env['ENABLE_TOOL_SEARCH'] = 'false'  # else MCP tools hide behind ToolSearch
        if request.model:
            argv += ['--model', request.model]
        if request.resume_id:
            argv += ['--resume', request.resume_id]
        return LaunchSpec([*argv, *request.extra_args, '--', request.prompt], env, files)

    def parse_event(self, obj: dict[str, Any]) -> list[TranscriptEvent]:
        kind, subtype = obj.get('type'), obj.get('subtype')
        if kind == 'system' and subtype == 'init':
            failed = [server['name'] for server in obj.get('mcp_servers', []) if server.get('status') == 'failed']
            text = f'Claude Code session started (model {obj.get("model")})'
            text += f'; MCP servers that failed to connect: {", ".join(failed)}' if failed else ''
            return [TranscriptEvent('system', text, {'resume_id': obj.get('session_id'), 'model': obj.get('model'),
                                                     'mcp_servers': obj.get('mcp_servers', [])})]
        if kind == 'system' and subtype == 'api_retry':
            text = f'API error {obj.get("error_status")} ({obj.get("error")}), retrying'
            return [TranscriptEvent('system', text, {'retry': True})]
        if kind == 'system' and subtype == 'permission_denied':
            return [TranscriptEvent('system', obj.get('message', ''), {'tool': obj.get('tool_name')})]
        if kind == 'assistant' and not obj.get('error'):  # an API error message repeats in the result line
            return [event for block in obj['message'].get('content', []) for event in _assistant_block(block)]
        if kind == 'user':
            return [TranscriptEvent('tool_result', text_of(block.get('content')),
                                    {'id': block.get('tool_use_id'), 'is_error': bool(block.get('is_error'))})
                    for block in obj['message'].get('content', []) if isinstance(block, dict)
                    and block.get('type') == 'tool_result']
        if kind == 'result':
            usage = obj.get('usage') or {}
            data = {'resume_id': obj.get('session_id'), 'input_tokens': usage.get('input_tokens'),
                    'output_tokens': usage.get('output_tokens'), 'cost_usd': obj.get('total_cost_usd'),
                    'duration_ms': obj.get('duration_ms'), 'turns': obj.get('num_turns')}
            events = [TranscriptEvent('usage', usage_text(data), data)]
            if obj.get('is_error'):  # `subtype` stays "success" on API errors
                events.append(TranscriptEvent('error', obj.get('result') or f'Claude Code failed ({subtype})',
                                              {'status': obj.get('api_error_status')}))
            return events
        return []


def _assistant_block(block: dict[str, Any]) -> list[TranscriptEvent]:
    if block.get('type') == 'text':
        return [TranscriptEvent('assistant', block['text'])]
    if block.get('type') == 'thinking':
        return [TranscriptEvent('system', block.get('thinking', ''), {'thinking': True})]
    if block.get('type') == 'tool_use':
        return [TranscriptEvent('tool_call', block['name'], {'tool': block['name'], 'input': block.get('input'),
                                                              'id': block.get('id')})]
    return []


def mcp_entry(server: McpServer) -> dict[str, Any]:
    if server.transport == 'stdio':
        return {'type': 'stdio', 'command': server.command, 'args': server.args, 'env': server.env}
    return {'type': server.transport, 'url': server.url, 'headers': server.headers}

