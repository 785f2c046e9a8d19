"""`agor.runtimes.cli_process` with real processes: the four agent CLIs against the fake model server, and the
shell runtime.

The CLIs come from scripts/test (pinned, in AGOR_AGENT_CLI_DIR); a missing CLI fails the run there and under CI.
"""
from __future__ import annotations

import asyncio
import time
from collections.abc import Callable

import pytest

from agor.runtimes import cli_process, registry
from agor.runtimes.base import McpServer, RunRequest, Runtime, TranscriptEvent

from .conftest import require_cli
from .fake_model_server import FakeModelServer

AGENTS = ['claude-code', 'codex', 'gemini', 'opencode']
API_KEYS = {'claude-code': 'test-key-anthropic', 'codex': 'test-key-openai', 'gemini': 'test-key-gemini',
            'opencode': 'test-key-openai'}


def agent(name: str) -> Runtime:
    return require_cli(name)


async def run(runtime: Runtime, request: RunRequest) -> tuple[cli_process.RunOutcome, list[TranscriptEvent]]:
    events: list[TranscriptEvent] = []
    outcome = await cli_process.run(runtime, request, events.append)
    return outcome, events


async def wait_for(condition: Callable[[], object], timeout: float = 30) -> None:
    deadline = time.monotonic() + timeout
    while not condition():
        assert time.monotonic() < deadline, 'timed out'
        await asyncio.sleep(0.05)


def group_gone(pid: int) -> bool:
    return not cli_process.process_group_alive(pid)


# --- the agent CLIs ----------------------------------------------------------------------------------------------

@pytest.mark.parametrize('name', AGENTS)
async def test_answer_then_resumed_turn(name: str, make_request, fake_model: FakeModelServer) -> None:
    runtime = agent(name)
    first, events = await run(runtime, make_request('Say hello [[plain]]'))
    assert first.status == 'completed', first
    assert first.reply == 'Fake answer: I saw 1 user turn(s).'
    assert first.resume_id and any(event.kind == 'usage' for event in events)
    assert fake_model.requests[-1].api_key == API_KEYS[name]

    second, _ = await run(runtime, make_request('And again [[plain]]', resume_id=first.resume_id))
    assert second.status == 'completed', second
    assert second.reply == 'Fake answer: I saw 2 user turn(s).'
    assert second.resume_id == first.resume_id
    assert fake_model.requests[-1].prompts == ['Say hello [[plain]]', 'And again [[plain]]']


@pytest.mark.parametrize('name', AGENTS)
async def test_shell_tool_call(name: str, make_request) -> None:
    outcome, events = await run(agent(name), make_request('Run it [[shell:printf agor-%s 42]]',
                                                          permission_mode='bypass'))
    assert outcome.status == 'completed', outcome
    assert [event.kind for event in events if event.kind.startswith('tool')] == ['tool_call', 'tool_result']
    assert 'agor-42' in next(event.text for event in events if event.kind == 'tool_result')
    assert 'agor-42' in outcome.reply


@pytest.mark.parametrize('name', AGENTS)
async def test_mcp_tool_call(name: str, make_request, echo_mcp: McpServer) -> None:
    outcome, events = await run(agent(name), make_request('Echo it [[mcp:hello]]', mcp_servers=[echo_mcp]))
    assert outcome.status == 'completed', outcome
    [result] = [event for event in events if event.kind == 'tool_result']
    assert 'tagged: hello' in result.text  # the server ran with the env the request gave it
    assert 'tagged: hello' in outcome.reply


@pytest.mark.parametrize('name', AGENTS)
async def test_unauthorized_fails_with_a_clear_error(name: str, make_request) -> None:
    outcome, _ = await run(agent(name), make_request('Go [[401]]'))
    assert outcome.status == 'failed'
    assert '401' in outcome.error and 'invalid API key' in outcome.error


@pytest.mark.parametrize('name', AGENTS)
async def test_server_error_fails_fast(name: str, make_request, fake_model: FakeModelServer) -> None:
    started = time.monotonic()
    outcome, _ = await run(agent(name), make_request('Go [[500]]'))
    assert outcome.status == 'failed' and outcome.error
    assert time.monotonic() - started < 60  # not minutes of the CLI's own retries (the count below is the sharp check)
    assert len(fake_model.requests) <= 6  # OpenCode's own retry loop: 5 retries, 100 ms apart (retry-after-ms)


@pytest.mark.parametrize('name', AGENTS)
async def test_stop_mid_run(name: str, make_request, fake_model: FakeModelServer) -> None:
    handles: list[cli_process.RunHandle] = []
    started = time.monotonic()
    task = asyncio.create_task(cli_process.run(agent(name), make_request('Take your time [[slow:30]]'), lambda e: None,
                                               on_start=handles.append))
    await wait_for(lambda: fake_model.requests)  # the model is streaming its answer
    await handles[0].stop()
    outcome = await task
    assert outcome.status == 'stopped' and outcome.error is None
    assert time.monotonic() - started < 60  # a stop that was ignored would have ended 'completed', not in time
    assert group_gone(handles[0].pid)


async def test_claude_reply_streams_while_it_is_generated(make_request, fake_model: FakeModelServer) -> None:
    seen: list[tuple[TranscriptEvent, int]] = []  # each reply event, with the replies the server had finished
    outcome = await cli_process.run(agent('claude-code'), make_request('Take your time [[slow:3]]'),
                                    lambda event: seen.append((event, fake_model.streams_done)))
    texts = [(event, done) for event, done in seen if event.kind == 'assistant']
    assert outcome.status == 'completed' and len(texts) == 20
    assert texts[0][1] == 0 and texts[-2][1] == 0  # shown while the model was still sending
    assert not texts[0][0].data.get('delta') and all(event.data['delta'] for event, _ in texts[1:])
    assert ''.join(event.text for event, _ in texts) == outcome.reply == ' '.join(f'slow{i}' for i in range(20))


@pytest.mark.parametrize('name', AGENTS)
async def test_retries_show_while_the_cli_retries(name: str, make_request, fake_model: FakeModelServer) -> None:
    retries: list[int] = []  # the model requests made when each retry was reported

    def on_event(event: TranscriptEvent) -> None:
        if event.data.get('retry'):
            retries.append(len(fake_model.requests))
    outcome = await cli_process.run(agent(name), make_request('Go [[500]]', max_retries=1), on_event)
    assert outcome.status == 'failed'
    assert retries and retries[0] < len(fake_model.requests)  # reported before the CLI gave up


async def test_gemini_runs_shell_commands_in_its_default_permission_mode(make_request) -> None:
    runtime = agent('gemini')
    assert runtime.default_permission_mode == 'auto_edit'
    outcome, events = await run(runtime, make_request('Run it [[shell:printf agor-%s 42]]'))
    assert outcome.status == 'completed', outcome
    [call] = [event for event in events if event.kind == 'tool_call']
    assert call.data['command'] == 'printf agor-%s 42'
    assert 'agor-42' in next(event.text for event in events if event.kind == 'tool_result')


async def test_missing_cli_gives_the_install_command(make_request, monkeypatch: pytest.MonkeyPatch, tmp_path) -> None:
    monkeypatch.setenv('PATH', str(tmp_path / 'nothing'))
    outcome, events = await run(registry.get('claude-code'), make_request('hi', resume_id='abc', cli_dir=tmp_path))
    assert outcome.status == 'failed' and events == []
    assert outcome.error == ('Claude Code CLI (`claude`) is not installed. '
                             'Install it with: npm i -g @anthropic-ai/claude-code@2.1.331')
    assert outcome.resume_id == 'abc'


# --- cli_process, through the shell runtime ---------------------------------------------------------------------------

SHELL = registry.get('shell')


async def test_shell_output_lines_become_the_reply(make_request) -> None:
    seen: list[TranscriptEvent] = []

    async def on_event(event: TranscriptEvent) -> None:
        seen.append(event)

    request = make_request('pwd; echo two >&2; echo "$FOO"', env={'FOO': 'bar'})
    outcome = await cli_process.run(SHELL, request, on_event)
    assert outcome.status == 'completed'
    assert outcome.reply.splitlines()[1:] == ['two', 'bar']
    assert outcome.reply.splitlines()[0].endswith('/repo')  # ran in the request's cwd
    assert all(event.kind == 'assistant' and event.data['delta'] for event in seen) and len(seen) == 3


async def test_shell_failure_and_bad_cwd(make_request, tmp_path) -> None:
    outcome, _ = await run(SHELL, make_request('echo partial; exit 3'))
    assert outcome.status == 'failed' and outcome.error == 'Shell exited with code 3'
    assert outcome.reply == 'partial\n'
    request = make_request('true')
    request.cwd = tmp_path / 'gone'
    outcome, _ = await run(SHELL, request)
    assert outcome.status == 'failed' and 'does not exist' in outcome.error


async def test_invalid_request_fails_without_exception(make_request, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(cli_process, 'find_binary', lambda runtime, cli_dir: '/bin/true')
    outcome, _ = await run(registry.get('codex'), make_request('hi', permission_mode='nonsense'))
    assert outcome.status == 'failed' and "no permission mode 'nonsense'" in outcome.error


async def test_stop_kills_the_whole_process_group(make_request) -> None:
    handles: list[cli_process.RunHandle] = []
    task = asyncio.create_task(cli_process.run(SHELL, make_request('sleep 60 & sleep 60; echo never'), lambda e: None,
                                               on_start=handles.append))
    await wait_for(lambda: handles)
    started = time.monotonic()
    await handles[0].stop(grace=2)
    outcome = await task
    assert outcome.status == 'stopped' and 'never' not in outcome.reply
    assert time.monotonic() - started < 3
    assert group_gone(handles[0].pid)


async def test_stop_escalates_to_sigkill(make_request) -> None:
    handles: list[cli_process.RunHandle] = []
    task = asyncio.create_task(cli_process.run(SHELL, make_request("trap '' TERM; echo ready; sleep 60"),
                                               lambda e: None, on_start=handles.append))
    await wait_for(lambda: handles)
    await asyncio.sleep(0.3)  # let bash install its trap
    started = time.monotonic()
    await handles[0].stop(grace=0.5)
    assert (await task).status == 'stopped'
    assert 0.4 < time.monotonic() - started < 3
    assert group_gone(handles[0].pid)


async def test_cancelling_the_run_stops_the_process(make_request) -> None:
    handles: list[cli_process.RunHandle] = []
    task = asyncio.create_task(cli_process.run(SHELL, make_request('sleep 60'), lambda e: None,
                                               on_start=handles.append))
    await wait_for(lambda: handles)
    task.cancel()
    with pytest.raises(asyncio.CancelledError):
        await task
    assert group_gone(handles[0].pid)


async def test_failing_event_handler_ends_the_run(make_request) -> None:
    handles: list[cli_process.RunHandle] = []

    def on_event(event: TranscriptEvent) -> None:
        raise RuntimeError('database is down')

    with pytest.raises(RuntimeError, match='database is down'):
        await cli_process.run(SHELL, make_request('echo hi; sleep 60'), on_event, on_start=handles.append)
    assert group_gone(handles[0].pid)


async def test_overlong_line_is_skipped(make_request) -> None:
    big = cli_process.LINE_LIMIT + 1000
    outcome, events = await run(SHELL, make_request(f"head -c {big} /dev/zero | tr '\\0' x; echo; echo after"))
    assert outcome.status == 'completed'
    assert [event.kind for event in events] == ['system', 'assistant']
    assert 'skipped' in events[0].text and events[1].text == 'after\n'


async def test_background_child_holding_stdout_does_not_hang_the_run(make_request) -> None:
    started = time.monotonic()
    handles: list[cli_process.RunHandle] = []
    outcome = await cli_process.run(SHELL, make_request('sleep 30 & echo done'), lambda e: None,
                                    on_start=handles.append)
    assert outcome.status == 'completed' and outcome.reply == 'done\n'
    assert time.monotonic() - started < cli_process.DRAIN_SECONDS + 2
    await cli_process.stop_process_group(handles[0].pid, grace=1)  # what a caller does with a leftover group
    assert group_gone(handles[0].pid)


async def test_output_still_buffered_when_the_cli_exits_is_read_to_the_end(make_request) -> None:
    """The CLI is long gone while a busy app still works through what it printed: none of it is dropped."""
    seen: list[str] = []

    async def slow(event: TranscriptEvent) -> None:
        seen.append(event.text)
        await asyncio.sleep(0.0002)  # 30,000 lines: longer than DRAIN_SECONDS after `seq` has exited

    outcome = await cli_process.run(SHELL, make_request('seq 1 30000'), slow)
    assert outcome.status == 'completed' and ''.join(seen) == ''.join(f'{i}\n' for i in range(1, 30001))
