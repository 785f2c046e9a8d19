"""OpenCode: `opencode run --format json [-m provider/model] [--session ID] < PROMPT`.

The config travels in OPENCODE_CONFIG_CONTENT: the MCP servers and, when OPENAI_BASE_URL is set, a provider `agor`
(@ai-sdk/openai-compatible, bundled with OpenCode) at that URL with the key from OPENAI_API_KEY; the model is then
`agor/<model>`. Without OPENAI_BASE_URL the model names a built-in provider (`anthropic/…`, `openai/…`), whose key
OpenCode reads from the usual env variables. Conversations live under `<home>/opencode` (XDG data and state dirs).

`run --format json` prints a text part once it is complete (no deltas). Its retries of failed model requests are only
in its log, so runs log to stderr at INFO level: "stream error" is a failed request, the next `message=stream` the
retry starting (`parse_stderr`); the other INFO lines are not kept for the error details.
"""
from __future__ import annotations

import json
import re
from typing import Any

from .base import (
    JsonRuntime, LaunchSpec, McpServer, RunRequest, TranscriptEvent, Turn, mcp_tool, text_of, tool_call, usage_event
)

DEFAULT_MODEL = 'gpt-5.5'  # for the `agor` provider when the session names no model
LOG_ARGS = ['--print-logs', '--log-level', 'INFO']
STREAM_ERROR = re.compile(r' message="stream error" .*small=false.* error\.error="(?:\w+Error: )?(.*)"$')
STREAM_START = re.compile(r' message=stream .*small=false')


class OpenCodeRuntime(JsonRuntime):
    name = 'opencode'
    stderr_noise = re.compile(r' level=(INFO|DEBUG) ')

    def build(self, request: RunRequest) -> LaunchSpec:
        state = request.home / 'opencode'
        config: dict[str, Any] = {'$schema': 'https://opencode.ai/config.json',
                                  'mcp': {server.name: mcp_entry(server) for server in request.mcp_servers}}
        model = request.model
        if request.env.get('OPENAI_BASE_URL'):
            model = request.model or DEFAULT_MODEL
            config['provider'] = {'agor': {
                'npm': '@ai-sdk/openai-compatible', 'name': 'Agor',
                'options': {'baseURL': request.env['OPENAI_BASE_URL'], 'apiKey': '{env:OPENAI_API_KEY}'},
                'models': {model: {'name': model, 'tool_call': True}}}}
            model = f'agor/{model}'
        env = {**request.env, 'OPENCODE_CONFIG_CONTENT': json.dumps(config), 'OPENCODE_DISABLE_AUTOUPDATE': '1',
               'OPENCODE_DISABLE_MODELS_FETCH': '1', 'XDG_DATA_HOME': str(state / 'data'),
               'XDG_STATE_HOME': str(state / 'state')}
        argv = ['opencode', 'run', '--format', 'json', *LOG_ARGS, *self.permission_args(request)]
        if model:
            argv += ['-m', model]
        if request.resume_id:
            argv += ['--session', request.resume_id]
        # On the command line `run` would wrap the prompt in quotes (it contains spaces); stdin keeps it exact.
        return LaunchSpec([*argv, *request.extra_args], env, stdin=request.prompt)

    def parse_stderr(self, line: str, turn: Turn) -> list[TranscriptEvent]:
        failed = STREAM_ERROR.search(line.rstrip())
        if failed:
            turn.failure = failed.group(1)
            return []
        if turn.failure is not None and STREAM_START.search(line):
            turn.attempts += 1
            text = f'Attempt {turn.attempts} failed ({turn.failure}); retrying'
            turn.failure = None
            return [TranscriptEvent('system', text, {'retry': True})]
        return []

    def parse_event(self, obj: dict[str, Any], turn: Turn) -> list[TranscriptEvent]:
        kind, part = obj.get('type'), obj.get('part') or {}
        session = {'resume_id': obj['sessionID']} if obj.get('sessionID') else {}
        if kind == 'text':
            return [TranscriptEvent('assistant', part.get('text', ''), session)]
        if kind == 'reasoning':
            return [TranscriptEvent('system', part.get('text', ''), {**session, 'thinking': True})]
        if kind == 'tool_use':  # printed once the tool has finished
            state = part.get('state') or {}
            failed = state.get('status') == 'error'
            output = state.get('error') if failed else state.get('output')
            name, args = part.get('tool', ''), state.get('input') or {}
            if name == 'bash':
                call = tool_call(name, args, part.get('callID'), command=args.get('command'))
            else:
                server, tool = mcp_tool(name, '', turn)
                call = tool_call(tool, args, part.get('callID'), server=server)
            call.data.update(session)
            result = TranscriptEvent('tool_result', text_of(output), {'id': part.get('callID'), 'is_error': failed})
            return [call, result]
        if kind == 'step_finish':
            tokens = part.get('tokens') or {}
            data = {**session, 'input_tokens': tokens.get('input'), 'output_tokens': tokens.get('output'),
                    'cost_usd': part.get('cost'), 'reason': part.get('reason')}
            return [usage_event(data)]
        if kind == 'error':
            error = obj.get('error') or {}
            data = error.get('data') or {}
            status = f' (HTTP {data["statusCode"]})' if data.get('statusCode') else ''
            text = f'{data.get("message") or error.get("name") or "OpenCode failed"}{status}'
            return [TranscriptEvent('error', text, {**session, 'status': data.get('statusCode')})]
        return []


def mcp_entry(server: McpServer) -> dict[str, Any]:
    if server.transport == 'stdio':
        return {'type': 'local', 'command': [server.command, *server.args], 'environment': server.env,
                'enabled': True}
    return {'type': 'remote', 'url': server.url, 'headers': server.headers, 'enabled': True}
