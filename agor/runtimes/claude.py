"""Claude Code: `claude -p --output-format stream-json --verbose --include-partial-messages -- PROMPT` (endpoint and
key from the env: ANTHROPIC_BASE_URL, ANTHROPIC_API_KEY or ANTHROPIC_AUTH_TOKEN, which the CLI reads itself).

Replies stream: the raw `stream_event` text deltas become assistant deltas, and the complete message that follows
only contributes its tool calls. The `result` line's cost is the CLI session's total so far (`own_usage`)."""
from __future__ import annotations

import json
import os
from typing import Any

from .base import (
    JsonRuntime, LaunchSpec, McpServer, RunRequest, TranscriptEvent, Turn, headers_via_env, own_usage, text_of,
    tool_call, usage_event, write_private
)

ASKING = {'default'}  # the modes in which Claude Code asks before edits and commands


class ClaudeRuntime(JsonRuntime):
    name = 'claude-code'

    def build(self, request: RunRequest) -> LaunchSpec:
        config_dir = request.home / 'claude'
        config_dir.mkdir(parents=True, exist_ok=True)
        argv = ['claude', '-p', '--output-format', 'stream-json', '--verbose', '--include-partial-messages',
                *self.permission_args(request)]
        env = {'CLAUDE_CODE_MAX_RETRIES': str(request.max_retries), 'CLAUDE_CODE_DISABLE_NONESSENTIAL_TRAFFIC': '1',
               **request.env, 'CLAUDE_CONFIG_DIR': str(config_dir)}
        if request.permission_mode == 'bypass' and request.account is None and os.geteuid() == 0:
            env['IS_SANDBOX'] = '1'  # otherwise: "cannot be used with root/sudo privileges"
        files = []
        if request.mcp_servers:
            config = {'mcpServers': {server.name: mcp_entry(server, env) for server in request.mcp_servers}}
            files.append(write_private(config_dir / 'agor-mcp.json', json.dumps(config)))
            argv += ['--mcp-config', str(files[0]), '--strict-mcp-config',
                     '--allowedTools', *(f'mcp__{server.name}' for server in request.mcp_servers)]
            env['ENABLE_TOOL_SEARCH'] = 'false'  # else MCP tools hide behind ToolSearch
        if request.permission_prompt and (request.permission_mode or self.default_permission_mode) in ASKING:
            argv += ['--permission-prompt-tool', 'mcp__{}__{}'.format(*request.permission_prompt)]
        if request.model:
            argv += ['--model', request.model]
        if request.resume_id:
            argv += ['--resume', request.resume_id]
        return LaunchSpec([*argv, *request.extra_args, '--', request.prompt], env, files)

    def parse_event(self, obj: dict[str, Any], turn: Turn) -> list[TranscriptEvent]:
        kind, subtype = obj.get('type'), obj.get('subtype')
        if kind == 'stream_event':
            return _stream_event(obj, turn)
        if kind == 'system' and subtype == 'init':
            turn.resume_id = obj.get('session_id')
            failed = [server['name'] for server in obj.get('mcp_servers', []) if server.get('status') == 'failed']
            text = f'Claude Code session started (model {obj.get("model")})'
            text += f'; MCP servers that failed to connect: {", ".join(failed)}' if failed else ''
            return [TranscriptEvent('system', text, {'resume_id': obj.get('session_id'), 'model': obj.get('model'),
                                                     'mcp_servers': obj.get('mcp_servers', [])})]
        if kind == 'system' and subtype == 'api_retry':
            delay = f' in {obj["retry_delay_ms"] / 1000:.1f} s' if obj.get('retry_delay_ms') else ''
            attempt = f' {obj["attempt"]} of {obj["max_retries"]}' if obj.get('attempt') and obj.get('max_retries') \
                else ''
            text = f'API error {obj.get("error_status")} ({obj.get("error")}): retry{attempt}{delay}'
            return [TranscriptEvent('system', text, {'retry': True, 'status': obj.get('error_status')})]
        if kind == 'system' and subtype == 'permission_denied':
            return [TranscriptEvent('system', obj.get('message', ''), {'tool': obj.get('tool_name')})]
        if kind == 'assistant' and not obj.get('error'):  # an API error message repeats in the result line
            message = obj['message']
            streamed = message.get('id') in turn.streamed
            return [event for block in message.get('content', []) if not (streamed and block.get('type') == 'text')
                    for event in _assistant_block(block)]
        if kind == 'user':
            return [TranscriptEvent('tool_result', text_of(block.get('content')),
                                    {'id': block.get('tool_use_id'), 'is_error': bool(block.get('is_error'))})
                    for block in obj['message'].get('content', []) if isinstance(block, dict)
                    and block.get('type') == 'tool_result']
        if kind == 'result':
            usage = obj.get('usage') or {}
            own = own_usage(turn, obj.get('session_id'), {'cost_usd': obj.get('total_cost_usd')})
            data = {'resume_id': obj.get('session_id'), 'input_tokens': usage.get('input_tokens'),
                    'output_tokens': usage.get('output_tokens'), **own, 'duration_ms': obj.get('duration_ms'),
                    'turns': obj.get('num_turns')}
            events = [usage_event(data)]
            if obj.get('is_error'):  # `subtype` stays "success" on API errors
                events.append(TranscriptEvent('error', obj.get('result') or f'Claude Code failed ({subtype})',
                                              {'status': obj.get('api_error_status')}))
            return events
        return []


def _stream_event(obj: dict[str, Any], turn: Turn) -> list[TranscriptEvent]:
    """A raw API stream event: a text block starts a new assistant entry, its deltas extend it."""
    event = obj.get('event') or {}
    if event.get('type') == 'content_block_start' and (event.get('content_block') or {}).get('type') == 'text':
        turn.streamed.add(obj.get('api_message_id') or '')
        turn.new_text = True
        return []
    delta = event.get('delta') or {}
    if event.get('type') == 'content_block_delta' and delta.get('type') == 'text_delta' and delta.get('text'):
        first, turn.new_text = turn.new_text, False
        return [TranscriptEvent('assistant', delta['text'], {} if first else {'delta': True})]
    return []


def _assistant_block(block: dict[str, Any]) -> list[TranscriptEvent]:
    if block.get('type') == 'text':
        return [TranscriptEvent('assistant', block['text'])]
    if block.get('type') == 'thinking':
        return [TranscriptEvent('system', block.get('thinking', ''), {'thinking': True})]
    if block.get('type') == 'tool_use':
        name, args = block['name'], block.get('input') or {}
        if name == 'Bash':
            return [tool_call(name, args, block.get('id'), command=args.get('command'))]
        server, _, tool = name.removeprefix('mcp__').partition('__') if name.startswith('mcp__') else (None, '', name)
        return [tool_call(tool, args, block.get('id'), server=server)]
    return []


def mcp_entry(server: McpServer, env: dict[str, str]) -> dict[str, Any]:
    """A server of `--mcp-config`; header values stay in the env (the CLI expands `${VAR}` in the file)."""
    if server.transport == 'stdio':
        return {'type': 'stdio', 'command': server.command, 'args': server.args, 'env': server.env}
    return {'type': server.transport, 'url': server.url, 'headers': headers_via_env(server, env, '${{{}}}')}

