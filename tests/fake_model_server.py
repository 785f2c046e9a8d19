"""A fake model server for the agent CLI tests: Anthropic Messages, OpenAI Responses and Chat Completions, Gemini.

Marker words in the latest user prompt choose the reply:
  (none) / [[plain]]  a short text that says how many user turns the request carried
  [[shell:CMD]]       a call of the CLI's own shell tool running CMD
  [[mcp:TEXT]]        a call of the MCP tool `fake_echo` with TEXT ([[mcp]] sends 'ping')
  [[call:TOOL JSON]]  a call of the MCP tool whose name ends with TOOL (e.g. the app's `post_comment`), JSON its
                      arguments (no `]` in them)
  [[401]] / [[500]]   an HTTP error, worded so that no CLI mistakes a 401 for a retryable error
  [[slow:N]]          text streamed in small pieces over about N seconds
When the request ends with a tool result, the reply is a final text quoting the tool's output.
Every agent turn request is recorded in `FakeModelServer.requests` (prompts, tool outputs, API key seen); side calls
(OpenCode's session title, Gemini's JSON classifier) are answered but not recorded.
"""
from __future__ import annotations

import json
import re
import threading
import time
import uuid
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any

SHELL_TOOLS = {'Bash': 'command', 'exec_command': 'cmd', 'run_shell_command': 'command', 'bash': 'command'}
MARKER = re.compile(r'\[\[(plain|shell|mcp|call|401|500|slow)(?::([^\]]*))?\]\]')
# Context blocks the CLIs add to user turns; they are not prompts a person typed.
CONTEXT_PREFIXES = ('<system-reminder>', '<environment_context>', '<user_instructions>', '# AGENTS.md',
                    '<permissions', '<INSTRUCTIONS>', '<session_context>')


@dataclass
class Seen:
    api: str
    path: str
    model: str
    prompts: list[str]
    tool_output: str | None
    tools: list[str]
    api_key: str


@dataclass
class Reply:
    kind: str  # text | tool | error
    text: str = ''
    tool: str = ''
    namespace: str | None = None
    args: dict[str, Any] = field(default_factory=dict)
    status: int = 200
    seconds: float = 0.0


class FakeModelServer:
    def __init__(self) -> None:
        self.requests: list[Seen] = []
        self.streams_done = 0  # agent turn replies sent completely
        self._httpd = ThreadingHTTPServer(('127.0.0.1', 0), _Handler)
        self._httpd.daemon_threads = True
        self._httpd.fake = self  # type: ignore[attr-defined]
        self._thread = threading.Thread(target=self._httpd.serve_forever, args=(0.05,), daemon=True)

    @property
    def url(self) -> str:
        return f'http://127.0.0.1:{self._httpd.server_port}'

    def start(self) -> FakeModelServer:
        self._thread.start()
        return self

    def stop(self) -> None:
        self._httpd.shutdown()
        self._httpd.server_close()


def decide(seen: Seen) -> Reply:
    if seen.tool_output is not None:
        return Reply('text', f'The tool said: {seen.tool_output.strip()}')
    match = MARKER.search(seen.prompts[-1] if seen.prompts else '')
    kind, arg = (match.group(1), match.group(2)) if match else ('plain', None)
    if kind in ('401', '500'):
        return Reply('error', status=int(kind))
    if kind == 'slow':
        return Reply('text', ' '.join(f'slow{i}' for i in range(20)), seconds=float(arg or 5))
    if kind == 'shell':
        tool = next((name for name in seen.tools if name in SHELL_TOOLS), None)
        if tool:
            return Reply('tool', tool=tool, args={SHELL_TOOLS[tool]: arg, 'description': 'Run the command'})
        return Reply('text', f'No shell tool was offered (tools: {", ".join(seen.tools)})')
    if kind in ('mcp', 'call'):
        wanted, _, args = (arg or '').partition(' ') if kind == 'call' else ('fake_echo', '', '')
        tool = next((name for name in seen.tools if name.endswith(wanted)), None)
        if tool:
            namespace, _, name = tool.rpartition('/')
            arguments = json.loads(args) if kind == 'call' and args else {'text': arg or 'ping'}
            return Reply('tool', tool=name, namespace=namespace or None, args=arguments)
        return Reply('text', f'No {wanted} tool was offered (tools: {", ".join(seen.tools)})')
    return Reply('text', f'Fake answer: I saw {len(seen.prompts)} user turn(s).')


def error_body(api: str, status: int) -> dict[str, Any]:
    # Plain words: OpenCode retries any error whose text mentions e.g. "server error" or "rate limit".
    message = 'fake: invalid API key' if status == 401 else 'fake: internal failure'
    if api == 'anthropic':
        kind = 'authentication_error' if status == 401 else 'api_error'
        return {'type': 'error', 'error': {'type': kind, 'message': message}}
    if api == 'gemini':
        state = 'UNAUTHENTICATED' if status == 401 else 'INTERNAL'
        return {'error': {'code': status, 'message': message, 'status': state}}
    return {'error': {'message': message, 'type': 'invalid_request_error', 'code': 'invalid_api_key' if status == 401
                      else 'internal'}}


def _is_context(text: str) -> bool:
    return text.lstrip().startswith(CONTEXT_PREFIXES)


def _texts(content: Any, *keys: str) -> list[str]:
    if isinstance(content, str):
        return [content]
    return [part['text'] for part in content or [] if isinstance(part, dict) and part.get('type', 'text') in keys
            and isinstance(part.get('text'), str)]


def read_anthropic(body: dict) -> tuple[list[str], str | None, list[str]]:
    prompts, tool_output = [], None
    for message in body.get('messages', []):
        if message['role'] != 'user':
            continue
        content = message['content']
        results = [part for part in content if isinstance(part, dict) and part.get('type') == 'tool_result'] \
            if isinstance(content, list) else []
        if results:
            tool_output = '\n'.join(text for part in results for text in _texts(part.get('content'), 'text'))
            continue
        tool_output = None
        text = '\n'.join(t for t in _texts(content, 'text') if not _is_context(t))
        if text:
            prompts.append(text)
    return prompts, tool_output, [tool['name'] for tool in body.get('tools', []) if 'name' in tool]


def read_responses(body: dict) -> tuple[list[str], str | None, list[str]]:
    prompts, tool_output = [], None
    items = body.get('input', [])
    for item in items:
        if item.get('type', 'message') == 'message' and item.get('role') == 'user':
            text = '\n'.join(t for t in _texts(item.get('content'), 'input_text') if not _is_context(t))
            if text:
                prompts.append(text)
    if items and items[-1].get('type', '').endswith('call_output'):
        output = items[-1].get('output')
        tool_output = output if isinstance(output, str) else json.dumps(output)
    tools = []
    for tool in body.get('tools', []):
        if tool.get('type') == 'namespace':
            tools += [f'{tool["name"]}/{inner["name"]}' for inner in tool.get('tools', [])]
        elif 'name' in tool:
            tools.append(tool['name'])
    return prompts, tool_output, tools


def read_chat(body: dict) -> tuple[list[str], str | None, list[str]]:
    messages = body.get('messages', [])
    prompts = []
    for message in messages:
        if message['role'] == 'user':
            text = '\n'.join(t for t in _texts(message.get('content'), 'text') if not _is_context(t))
            if text:
                prompts.append(text)
    tool_output = None
    if messages and messages[-1]['role'] == 'tool':
        tool_output = '\n'.join(_texts(messages[-1].get('content'), 'text'))
    return prompts, tool_output, [tool['function']['name'] for tool in body.get('tools', [])]


def read_gemini(body: dict) -> tuple[list[str], str | None, list[str]]:
    contents = body.get('contents', [])
    prompts = []
    for content in contents:
        texts = [part['text'] for part in content.get('parts', []) if isinstance(part.get('text'), str)]
        text = '\n'.join(t for t in texts if not _is_context(t))
        if content.get('role') == 'user' and text:
            prompts.append(text)
    tool_output = None
    last_parts = contents[-1].get('parts', []) if contents else []
    responses = [part['functionResponse'] for part in last_parts if 'functionResponse' in part]
    if responses:
        response = responses[-1].get('response', {})
        tool_output = response.get('output') if isinstance(response.get('output'), str) else json.dumps(response)
    tools = [decl['name'] for tool in body.get('tools', []) for decl in tool.get('functionDeclarations', [])]
    return prompts, tool_output, tools


def fill_schema(schema: dict) -> Any:
    """A value matching a JSON schema (Gemini's classifier and next-speaker side calls ask for JSON)."""
    kind = schema.get('type', 'object')
    kind = kind.lower() if isinstance(kind, str) else kind[0]
    if 'enum' in schema:
        return 'user' if 'user' in schema['enum'] else schema['enum'][0]
    if kind == 'object':
        return {name: fill_schema(sub) for name, sub in schema.get('properties', {}).items()}
    if kind == 'array':
        return []
    if kind == 'boolean':
        return False
    if kind in ('integer', 'number'):
        return 0
    return 'fake'


class _Handler(BaseHTTPRequestHandler):
    server_version = 'FakeModel/1.0'

    def log_message(self, format: str, *args: Any) -> None:  # noqa: A002 - quiet
        pass

    def do_POST(self) -> None:  # noqa: N802
        body = json.loads(self.rfile.read(int(self.headers.get('content-length') or 0)) or b'{}')
        path = self.path.split('?')[0]
        if path.endswith('/messages'):
            self._serve('anthropic', body, read_anthropic, body.get('model', ''), self._anthropic)
        elif path.endswith('/responses'):
            self._serve('responses', body, read_responses, body.get('model', ''), self._responses)
        elif path.endswith('/chat/completions'):
            if not body.get('tools'):  # OpenCode's session-title call
                return self._chat(Reply('text', 'Fake title'), body.get('model', ''))
            self._serve('chat', body, read_chat, body.get('model', ''), self._chat)
        elif ':streamGenerateContent' in path:
            model = path.rsplit('/', 1)[-1].split(':')[0]
            self._serve('gemini', body, read_gemini, model, self._gemini)
        elif ':generateContent' in path:
            schema = body.get('generationConfig', {}).get('responseJsonSchema') or {}
            text = json.dumps(fill_schema(schema)) if schema else 'fake'
            self._json(200, {'candidates': [{'content': {'role': 'model', 'parts': [{'text': text}]},
                                             'finishReason': 'STOP', 'index': 0}]})
        else:
            self._json(404, {'error': {'message': f'fake: no route {path}'}})

    def _serve(self, api: str, body: dict, reader, model: str, stream) -> None:
        prompts, tool_output, tools = reader(body)
        key = self.headers.get('x-api-key') or self.headers.get('x-goog-api-key') or \
            self.headers.get('authorization', '').removeprefix('Bearer ')
        seen = Seen(api, self.path, model, prompts, tool_output, tools, key)
        self.server.fake.requests.append(seen)  # type: ignore[attr-defined]
        reply = decide(seen)
        if reply.kind == 'error':
            return self._json(reply.status, error_body(api, reply.status), {'retry-after-ms': '100'})
        try:
            stream(reply, model)
            self.server.fake.streams_done += 1  # type: ignore[attr-defined]
        except (BrokenPipeError, ConnectionResetError):
            pass  # the CLI went away (a stop test)

    def _json(self, status: int, payload: dict, headers: dict[str, str] | None = None) -> None:
        data = json.dumps(payload).encode()
        self.send_response(status)
        for name, value in {'content-type': 'application/json', 'content-length': str(len(data)),
                            **(headers or {})}.items():
            self.send_header(name, value)
        self.end_headers()
        self.wfile.write(data)

    def _start_sse(self) -> None:
        self.send_response(200)
        self.send_header('content-type', 'text/event-stream')
        self.send_header('cache-control', 'no-cache')
        self.send_header('connection', 'close')
        self.end_headers()

    def _event(self, data: Any, event: str | None = None) -> None:
        head = f'event: {event}\n' if event else ''
        payload = data if isinstance(data, str) else json.dumps(data)
        self.wfile.write(f'{head}data: {payload}\n\n'.encode())
        self.wfile.flush()

    def _chunks(self, reply: Reply) -> list[str]:
        """The reply text in word-sized pieces (streamed one event each)."""
        words = reply.text.split(' ')
        return [word + (' ' if i < len(words) - 1 else '') for i, word in enumerate(words)]

    def _pause(self, reply: Reply, count: int) -> None:
        """Between pieces of a slow reply, so that the whole reply lasts about `reply.seconds`."""
        if reply.seconds:
            time.sleep(reply.seconds / count)

    def _anthropic(self, reply: Reply, model: str) -> None:
        self._start_sse()
        usage = {'input_tokens': 12, 'output_tokens': 1, 'cache_creation_input_tokens': 0, 'cache_read_input_tokens': 0}
        self._event({'type': 'message_start', 'message': {
            'id': f'msg_{uuid.uuid4().hex[:12]}', 'type': 'message', 'role': 'assistant', 'model': model,
            'content': [], 'stop_reason': None, 'stop_sequence': None, 'usage': usage}}, 'message_start')
        if reply.kind == 'tool':
            block = {'type': 'tool_use', 'id': f'toolu_{uuid.uuid4().hex[:12]}', 'name': reply.tool, 'input': {}}
            self._event({'type': 'content_block_start', 'index': 0, 'content_block': block}, 'content_block_start')
            delta = {'type': 'input_json_delta', 'partial_json': json.dumps(reply.args)}
            self._event({'type': 'content_block_delta', 'index': 0, 'delta': delta}, 'content_block_delta')
        else:
            block = {'type': 'text', 'text': ''}
            self._event({'type': 'content_block_start', 'index': 0, 'content_block': block}, 'content_block_start')
            chunks = self._chunks(reply)
            for chunk in chunks:
                self._pause(reply, len(chunks))
                delta = {'type': 'text_delta', 'text': chunk}
                self._event({'type': 'content_block_delta', 'index': 0, 'delta': delta}, 'content_block_delta')
        self._event({'type': 'content_block_stop', 'index': 0}, 'content_block_stop')
        stop = 'tool_use' if reply.kind == 'tool' else 'end_turn'
        self._event({'type': 'message_delta', 'delta': {'stop_reason': stop, 'stop_sequence': None},
                     'usage': {'output_tokens': 7}}, 'message_delta')
        self._event({'type': 'message_stop'}, 'message_stop')

    def _responses(self, reply: Reply, model: str) -> None:
        self._start_sse()
        response_id = f'resp_{uuid.uuid4().hex[:12]}'
        response = {'id': response_id, 'object': 'response', 'model': model, 'status': 'in_progress', 'output': []}
        self._event({'type': 'response.created', 'response': response}, 'response.created')
        if reply.kind == 'tool':
            item = {'type': 'function_call', 'id': f'fc_{uuid.uuid4().hex[:12]}', 'status': 'completed',
                    'call_id': f'call_{uuid.uuid4().hex[:12]}', 'name': reply.tool, 'arguments': json.dumps(reply.args)}
            if reply.namespace:
                item['namespace'] = reply.namespace
        else:
            item_id = f'msg_{uuid.uuid4().hex[:12]}'
            added = {'type': 'message', 'id': item_id, 'role': 'assistant', 'status': 'in_progress', 'content': []}
            self._event({'type': 'response.output_item.added', 'output_index': 0, 'item': added},
                        'response.output_item.added')
            chunks = self._chunks(reply)
            for chunk in chunks:
                self._pause(reply, len(chunks))
                self._event({'type': 'response.output_text.delta', 'item_id': item_id, 'output_index': 0,
                             'content_index': 0, 'delta': chunk}, 'response.output_text.delta')
            item = {'type': 'message', 'id': item_id, 'role': 'assistant', 'status': 'completed',
                    'content': [{'type': 'output_text', 'text': reply.text, 'annotations': []}]}
        self._event({'type': 'response.output_item.done', 'output_index': 0, 'item': item}, 'response.output_item.done')
        usage = {'input_tokens': 12, 'input_tokens_details': {'cached_tokens': 0}, 'output_tokens': 7,
                 'output_tokens_details': {'reasoning_tokens': 0}, 'total_tokens': 19}
        done = {**response, 'status': 'completed', 'output': [item], 'usage': usage}
        self._event({'type': 'response.completed', 'response': done}, 'response.completed')

    def _chat(self, reply: Reply, model: str) -> None:
        self._start_sse()
        base = {'id': f'chatcmpl-{uuid.uuid4().hex[:12]}', 'object': 'chat.completion.chunk',
                'created': int(time.time()), 'model': model}

        def chunk(delta: dict, finish: str | None = None, **extra: Any) -> None:
            self._event({**base, 'choices': [{'index': 0, 'delta': delta, 'finish_reason': finish}], **extra})

        if reply.kind == 'tool':
            call = {'index': 0, 'id': f'call_{uuid.uuid4().hex[:12]}', 'type': 'function',
                    'function': {'name': reply.tool, 'arguments': json.dumps(reply.args)}}
            chunk({'role': 'assistant', 'tool_calls': [call]})
        else:
            pieces = self._chunks(reply)
            for piece in pieces:
                self._pause(reply, len(pieces))
                chunk({'role': 'assistant', 'content': piece})
        usage = {'prompt_tokens': 12, 'completion_tokens': 7, 'total_tokens': 19}
        chunk({}, 'tool_calls' if reply.kind == 'tool' else 'stop', usage=usage)
        self._event('[DONE]')

    def _gemini(self, reply: Reply, model: str) -> None:
        self._start_sse()
        usage = {'promptTokenCount': 12, 'candidatesTokenCount': 7, 'totalTokenCount': 19}

        def chunk(parts: list[dict], finish: str | None = None) -> None:
            candidate: dict[str, Any] = {'content': {'role': 'model', 'parts': parts}, 'index': 0}
            if finish:
                candidate['finishReason'] = finish
            self._event({'candidates': [candidate], 'usageMetadata': usage, 'modelVersion': model})

        if reply.kind == 'tool':
            chunk([{'functionCall': {'name': reply.tool, 'args': reply.args}}], 'STOP')
            return
        pieces = self._chunks(reply)
        for i, piece in enumerate(pieces):
            self._pause(reply, len(pieces))
            chunk([{'text': piece}], 'STOP' if i == len(pieces) - 1 else None)
