"""A transcript entry as HTML, as the session panel draws it: agent replies are Markdown (sanitized like comments),
shell and tool output verbatim, a tool call says what ran, and long output and an error's details are collapsed.
"""
from __future__ import annotations

import json
from html import escape
from typing import Any

from agor import comment_text
from agor.runtimes.base import shorten, usage_text

LONG_OUTPUT_LINES = 8  # tool output longer than this is collapsed
LONG_OUTPUT_CHARS = 600
OUTPUT_LIMIT = 20_000


def entry_html(entry: dict[str, Any], *, preformatted: bool) -> str:
    """Agent replies are Markdown (sanitized like comments); shell output and tool output stay verbatim. A tool call
    says what ran, long tool output and an error's details are collapsed (<details>)."""
    kind, text, data = entry['kind'], entry['text'], entry['data']
    if kind == 'user':
        runs_as = data.get('runs_as')
        runs_as = f' <span class="agor-runs-as">(runs as {escape(runs_as)})</span>' if runs_as else ''
        return f'<div class="agor-prompt"><b>{escape(data.get("by", ""))}</b>{runs_as}: {escape(text)}</div>'
    if kind == 'assistant':
        return f'<pre class="agor-output">{escape(text)}</pre>' if preformatted else comment_text.render(text)
    if kind == 'tool_call':
        return _tool_call_html(text, data)
    if kind == 'tool_result':
        return _output_html(text, 'agor-tool-result agor-failed' if data.get('is_error') else 'agor-tool-result')
    if kind == 'error':
        details = data.get('details') or []
        more = (f'<details class="agor-details"><summary>details</summary><pre>{escape(chr(10).join(details))}</pre>'
                '</details>') if details else ''
        return f'<div class="agor-error"><div class="agor-headline">{_icon("warning")}{escape(text)}</div>{more}</div>'
    if kind == 'usage':
        return f'<div class="agor-note agor-usage">This turn: {escape(usage_text(data))}</div>'
    if data.get('retry'):
        return f'<div class="agor-retry">{_icon("replay")}{escape(text)}</div>'
    return f'<div class="agor-note">{escape(text)}</div>'


def _tool_call_html(text: str, data: dict[str, Any]) -> str:
    if data.get('command') is not None:
        what, detail = 'Shell', data['command']
    elif data.get('server'):
        what, detail = f'MCP {data["server"]} › {data.get("tool", "")}', _arguments(data.get('input'))
    elif data.get('tool'):
        what, detail = data['tool'], _arguments(data.get('input'))
    else:
        what, detail = 'Tool', text
    code = f' <code>{escape(shorten(detail, 300))}</code>' if detail else ''
    return f'<div class="agor-tool">{_icon("build")}<b>{escape(what)}</b>{code}</div>'


def _icon(name: str) -> str:
    return f'<i class="material-icons agor-icon" aria-hidden="true">{name}</i>'


def _arguments(value: Any) -> str:
    if not value:
        return ''
    if isinstance(value, dict):
        return ', '.join(f'{key}={json.dumps(item, ensure_ascii=False)}' for key, item in value.items())
    return json.dumps(value, ensure_ascii=False)


def _output_html(text: str, classes: str) -> str:
    """Tool output verbatim; longer than a few lines it is collapsed behind its first line."""
    body = escape(text[:OUTPUT_LIMIT]) + ('\n…' if len(text) > OUTPUT_LIMIT else '')
    lines = text.splitlines()
    if len(lines) <= LONG_OUTPUT_LINES and len(text) <= LONG_OUTPUT_CHARS:
        return f'<pre class="{classes}">{body}</pre>'
    summary = f'{shorten(lines[0] if lines else "", 100)} ({len(lines)} lines)'
    return f'<details class="{classes}"><summary>{escape(summary)}</summary><pre>{body}</pre></details>'
