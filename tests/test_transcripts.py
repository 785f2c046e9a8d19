"""What a session's transcript shows, for each agent CLI: its recorded real output (tests/fixtures/runtime_output, made
by tests/record_runtime_output.py) replayed as the CLI's stdout, stderr and exit code through the real session workers
and database, then rendered as the session panel renders one entry."""
import asyncio
import json
import re
import shutil
from html import escape, unescape
from pathlib import Path

import pytest

from agor import agent_sessions
from agor.errors import InvalidInput
from agor.models import Role
from agor.runtimes import cli_process, registry
from agor.session_worker import SessionWorkers
from components.transcript_html import entry_html

from .conftest import seed_board

RECORDED = Path(__file__).parent / 'fixtures' / 'runtime_output'
EXIT_CODES = json.loads((RECORDED / 'exit_codes.json').read_text())
AGENTS = ['claude-code', 'codex', 'gemini', 'opencode']


@pytest.fixture
async def scene(settings, git_repo, tmp_path, monkeypatch, instance_keys):
    """(seeded board, replay): `replay(name, case)` makes the next run of any CLI print that recorded output."""
    script = tmp_path / 'replayed-cli'
    monkeypatch.setattr(cli_process, 'find_binary', lambda runtime, cli_dir: str(script))

    def replay(name: str, case: str) -> None:  # the recordings are copied beside the script: as root the CLI runs
        prefix = tmp_path / f'{name.split("-")[0]}_{case}'  # as the executor, which may not read the checkout
        for suffix in ('.jsonl', '.stderr'):
            shutil.copy(RECORDED / f'{prefix.name}{suffix}', f'{prefix}{suffix}')
        script.write_text(f"#!/bin/sh\ncat '{prefix}.jsonl'\ncat '{prefix}.stderr' >&2\n"
                          f'exit {EXIT_CODES[f"{name}_{case}"]}\n')
        script.chmod(0o755)

    seeded = seed_board(settings, git_repo, bob=Role.member)
    workers = SessionWorkers(settings)
    await workers.start()
    yield seeded, replay
    await workers.stop_all()


async def run(seeded, name: str, prompt: str = 'Go', session_id: str | None = None) -> str:
    """Start (or prompt) a session and wait until the run settled; its id."""
    if session_id is None:
        session_id = agent_sessions.create(seeded.owner, seeded.worktree.id, name, prompt).id
    else:
        agent_sessions.prompt(seeded.owner, session_id, prompt)
    for _ in range(400):
        detail = agent_sessions.get(seeded.owner, session_id)
        if detail['status'] not in ('running', 'idle') and not detail['queued']:
            return session_id
        await asyncio.sleep(0.05)
    raise AssertionError(f'the session stayed {detail["status"]}')


def shown(seeded, session_id: str) -> list[tuple[str, str]]:
    """(kind, rendered HTML) of every transcript entry."""
    return [(entry['kind'], entry_html(entry, preformatted=False))
            for entry in agent_sessions.transcript(seeded.owner, session_id)]


def visible(html: str) -> str:
    """The text a reader sees without opening a <details> toggle."""
    html = re.sub(r'<details[^>]*>\s*<summary>(.*?)</summary>.*?</details>', r'\1', html, flags=re.S)
    return unescape(re.sub(r'<[^>]+>', '', html))


@pytest.mark.parametrize('name', AGENTS)
async def test_an_error_appears_once_with_the_providers_message_and_details_behind_a_toggle(scene, name):
    seeded, replay = scene
    replay(name, '401')
    session_id = await run(seeded, name)
    entries = shown(seeded, session_id)
    mentions = [(kind, html) for kind, html in entries if 'invalid API key' in html]
    assert [kind for kind, _ in mentions] == ['error']
    [(_, error)] = mentions
    headline = visible(error)
    assert '401' in headline and 'invalid API key' in headline
    assert ' at ' not in headline and 'WARNING' not in headline and 'Full report' not in headline
    noise = registry.get(name).stderr_noise
    stderr = [line for line in (RECORDED / f'{name.split("-")[0]}_401.stderr').read_text().splitlines()
              if not (noise and noise.search(line))][-cli_process.STDERR_LINES:]
    if any(line.strip() for line in stderr):  # the CLI's last stderr lines: there, but only behind the toggle
        assert '<summary>details</summary>' in error
        assert all(escape(line) in error for line in stderr)
    assert 'level=INFO' not in error  # OpenCode's log chatter (read for its retries) is not kept
    assert agent_sessions.get(seeded.owner, session_id)['error'] == next(
        entry['text'] for entry in agent_sessions.transcript(seeded.owner, session_id) if entry['kind'] == 'error')


@pytest.mark.parametrize('name', AGENTS)
async def test_tool_calls_show_the_command_or_the_mcp_tool_and_the_result(scene, name):
    seeded, replay = scene
    replay(name, 'shell')
    entries = shown(seeded, await run(seeded, name))
    [call] = [visible(html) for kind, html in entries if kind == 'tool_call']
    assert 'Shell' in call and 'printf agor-%s 42' in call
    [result] = [visible(html) for kind, html in entries if kind == 'tool_result']
    assert 'agor-42' in result

    replay(name, 'mcp')
    entries = shown(seeded, await run(seeded, name))
    [call] = [visible(html) for kind, html in entries if kind == 'tool_call']
    assert 'fake_echo' in call and 'text="hello"' in call  # the server's name where the CLI's tool name says it
    assert 'MCP echo › fake_echo' in call or name in ('gemini', 'opencode')  # theirs need the run's server names
    [result] = [visible(html) for kind, html in entries if kind == 'tool_result']
    assert 'tagged: hello' in result


@pytest.mark.parametrize('name', AGENTS)
async def test_retries_are_in_the_transcript_before_the_error(scene, name):
    seeded, replay = scene
    replay(name, '500')
    entries = shown(seeded, await run(seeded, name))
    retry_at = next(i for i, (_, html) in enumerate(entries) if 'class="agor-retry"><i class="material-icons' in html)
    error_at = next(i for i, (kind, _) in enumerate(entries) if kind == 'error')
    assert retry_at < error_at and [kind for kind, _ in entries].count('error') == 1


async def test_a_resumed_claude_turn_shows_its_own_cost_and_the_header_the_total(scene):
    seeded, replay = scene
    replay('claude-code', 'plain')
    session_id = await run(seeded, 'claude-code')
    replay('claude-code', 'resume')  # its result line reports the session's cost so far: 0.000376
    await run(seeded, 'claude-code', 'Again', session_id)
    usages = [visible(html) for kind, html in shown(seeded, session_id) if kind == 'usage']
    assert usages == ['This turn: 12 tokens in, 7 out, $0.0002'] * 2
    figures = agent_sessions.usage(seeded.owner, session_id).values()
    assert agent_sessions.usage_total(figures) == pytest.approx({'input_tokens': 24, 'output_tokens': 14,
                                                                 'cost_usd': 0.000376})


async def test_a_streamed_claude_reply_is_one_entry(scene):
    seeded, replay = scene
    replay('claude-code', 'plain')  # text deltas, then the complete message
    entries = agent_sessions.transcript(seeded.owner, await run(seeded, 'claude-code'))
    assert [entry['text'] for entry in entries if entry['kind'] == 'assistant'] == [
        'Fake answer: I saw 1 user turn(s).']


async def test_long_tool_output_is_collapsed():
    long = entry_html({'kind': 'tool_result', 'text': '\n'.join(f'line {i}' for i in range(50)), 'data': {}},
                       preformatted=False)
    assert visible(long) == 'line 0 (50 lines)' and 'line 49' in long
    short = entry_html({'kind': 'tool_result', 'text': 'ok', 'data': {}}, preformatted=False)
    assert visible(short) == 'ok'


@pytest.mark.parametrize('fields, message', [({'permission_mode': 'yolo'}, "no permission mode 'yolo'"),
                                             ({'model': '--yolo'}, 'A model name starts with a letter'),
                                             ({'model': 'x' * 121}, 'at most 120')])
def test_the_server_refuses_a_bad_permission_mode_or_model(settings, git_repo, fields, message):
    seeded = seed_board(settings, git_repo)
    with pytest.raises(InvalidInput, match=message):
        agent_sessions.create(seeded.owner, seeded.worktree.id, 'gemini', 'hi', **fields)
    assert agent_sessions.for_worktree(seeded.owner, seeded.worktree.id) == []
