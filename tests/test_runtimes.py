"""Agent runtime adapters without the CLIs: command lines and config they build, and parsing of recorded output."""
from __future__ import annotations

import json
import os
import stat
import tomllib
from pathlib import Path

import pytest

from agor.errors import InvalidInput
from agor.runtimes import registry
from agor.runtimes.base import (
    McpServer,
    RunOutcome,
    RunRequest,
    TranscriptEvent,
    Turn,
    catalog,
    headline,
    last_reply,
)
from agor.runtimes.codex import toml
from agor.runtimes.shell import ShellRuntime

RECORDED = Path(__file__).parent / 'fixtures' / 'runtime_output'
EXIT_CODES = json.loads((RECORDED / 'exit_codes.json').read_text())  # as the CLIs gave them (Gemini: 145, 244)
AGENTS = ['claude-code', 'codex', 'gemini', 'opencode']


def recorded(name: str, case: str, suffix: str = '.jsonl') -> list[str]:
    return (RECORDED / f'{name.split("-")[0]}_{case}{suffix}').read_text().splitlines()


def replay(name: str, case: str, turn: Turn | None = None) -> tuple[list[TranscriptEvent], RunOutcome]:
    """The recorded stdout, then stderr, through the adapter (cli_process reads them concurrently)."""
    runtime, turn = registry.get(name), turn or Turn(mcp_servers=['echo'])
    events = [event for line in recorded(name, case) for event in runtime.parse_line(line, turn)]
    stderr = recorded(name, case, '.stderr')
    events += [event for line in stderr for event in runtime.parse_stderr(line, turn)]
    return events, runtime.outcome(EXIT_CODES[f'{name}_{case}'], events, stderr)


def request(tmp_path: Path, prompt: str = 'Fix the bug', **fields) -> RunRequest:
    env = {'PATH': '/usr/bin:/bin', 'HOME': str(tmp_path), 'OPENAI_BASE_URL': 'http://127.0.0.1:9/v1',
           'OPENAI_API_KEY': 'sk-test', **fields.pop('env', {})}
    return RunRequest(prompt, tmp_path, tmp_path / 'state', env, **{'max_retries': 1, **fields})


# --- parsing recorded output -------------------------------------------------------------------------------------

@pytest.mark.parametrize('name', AGENTS)
def test_plain_answer_and_resume_id(name: str) -> None:
    events, outcome = replay(name, 'plain')
    assert outcome.status == 'completed'
    assert outcome.reply == 'Fake answer: I saw 1 user turn(s).'
    assert outcome.resume_id
    usage = [event for event in events if event.kind == 'usage']
    assert usage and usage[-1].data['input_tokens'] == 12 and usage[-1].data['output_tokens'] == 7
    resumed_events, resumed = replay(name, 'resume')
    assert resumed.reply == 'Fake answer: I saw 2 user turn(s).'
    assert resumed.resume_id == outcome.resume_id


@pytest.mark.parametrize('name', AGENTS)
def test_shell_tool_call(name: str) -> None:
    events, outcome = replay(name, 'shell')
    calls = [event for event in events if event.kind == 'tool_call']
    results = [event for event in events if event.kind == 'tool_result']
    assert len(calls) == 1 and 'printf agor-%s 42' in json.dumps(calls[0].data['input'])
    assert len(results) == 1 and 'agor-42' in results[0].text and not results[0].data['is_error']
    assert outcome.status == 'completed' and 'agor-42' in outcome.reply
    assert [event.kind for event in events].index('tool_call') < [event.kind for event in events].index('tool_result')


@pytest.mark.parametrize('name', AGENTS)
def test_mcp_tool_call(name: str) -> None:
    events, outcome = replay(name, 'mcp')
    [call] = [event for event in events if event.kind == 'tool_call']
    [result] = [event for event in events if event.kind == 'tool_result']
    assert 'fake_echo' in call.data['tool'] and call.data['input'] == {'text': 'hello'}
    assert 'tagged: hello' in result.text
    assert outcome.status == 'completed' and 'tagged: hello' in outcome.reply


@pytest.mark.parametrize('name', AGENTS)
def test_unauthorized_fails_with_the_api_message(name: str) -> None:
    events, outcome = replay(name, '401')
    assert outcome.status == 'failed'
    assert '401' in outcome.error and 'invalid API key' in outcome.error
    assert outcome.reply == ''  # the error is not shown as an answer


@pytest.mark.parametrize('name', AGENTS)
def test_server_error_fails(name: str) -> None:
    _, outcome = replay(name, '500')
    assert outcome.status == 'failed'
    expected = 'high demand' if name == 'codex' else 'internal failure'  # Codex replaces the 500's message
    assert expected in outcome.error


@pytest.mark.parametrize('name', AGENTS)
def test_noise_lines_do_not_break_parsing(name: str) -> None:
    runtime = registry.get(name)
    assert runtime.parse_line('   \n', Turn()) == []
    assert runtime.parse_line('Loaded cached credentials.', Turn()) == [
        TranscriptEvent('system', 'Loaded cached credentials.', {'raw': True})]
    assert runtime.parse_line('[1, 2]', Turn())[0].data == {'raw': True}
    assert runtime.parse_line('{"type": "something-new"}', Turn()) == []


def test_exit_code_without_error_line_fails_with_stderr() -> None:
    runtime = registry.get('gemini')
    outcome = runtime.outcome(41, [], ['noise', 'Invalid auth method selected.', ''])
    assert outcome.status == 'failed' and outcome.error == 'Invalid auth method selected.'
    assert runtime.outcome(3, [], []).error == 'Gemini exited with code 3'


def test_reply_joins_deltas_of_the_last_message() -> None:
    events = [TranscriptEvent('assistant', 'first'), TranscriptEvent('tool_call', 'x'),
              TranscriptEvent('assistant', 'Hel'), TranscriptEvent('assistant', 'lo', {'delta': True})]
    assert last_reply(events) == 'Hello'


def test_claude_streams_the_reply_as_deltas_and_does_not_repeat_it() -> None:
    events, outcome = replay('claude-code', 'plain')
    texts = [event for event in events if event.kind == 'assistant']
    assert len(texts) > 3 and not texts[0].data.get('delta') and all(e.data['delta'] for e in texts[1:])
    assert ''.join(event.text for event in texts) == outcome.reply == 'Fake answer: I saw 1 user turn(s).'


@pytest.mark.parametrize('name, figures', [('claude-code', {'cost_usd': 0.000188}),  # the result line says 0.000376
                                           ('codex', {'input_tokens': 12, 'output_tokens': 7})])  # it says 24 / 14
def test_a_resumed_turn_reports_its_own_usage(name: str, figures: dict) -> None:
    first, _ = replay(name, 'plain')
    [before] = [event.data['totals'] for event in first if event.kind == 'usage']
    resumed, _ = replay(name, 'resume', Turn(totals_before=before))
    [usage] = [event for event in resumed if event.kind == 'usage']
    assert {key: usage.data[key] for key in figures} == pytest.approx(figures)
    assert usage.data['totals']['resume_id'] == before['resume_id']
    other_session = Turn(totals_before={**before, 'resume_id': 'another-session'})
    [unrelated] = [event for event in replay(name, 'resume', other_session)[0] if event.kind == 'usage']
    assert unrelated.data['totals'] == usage.data['totals']
    assert any(unrelated.data[key] != usage.data[key] for key in figures)  # totals of another session: not used


@pytest.mark.parametrize('name', AGENTS)
def test_tool_calls_say_what_ran(name: str) -> None:
    [shell] = [event for event in replay(name, 'shell')[0] if event.kind == 'tool_call']
    assert shell.data['command'] == 'printf agor-%s 42' and shell.text == '$ printf agor-%s 42'
    [mcp] = [event for event in replay(name, 'mcp')[0] if event.kind == 'tool_call']
    assert (mcp.data['server'], mcp.data['tool'], mcp.data['input']) == ('echo', 'fake_echo', {'text': 'hello'})


@pytest.mark.parametrize('name', AGENTS)
def test_retries_become_events(name: str) -> None:
    events, outcome = replay(name, '500')
    retries = [event for event in events if event.data.get('retry')]
    assert retries and all(event.kind == 'system' for event in retries)
    assert outcome.status == 'failed' and not any(event.text == outcome.error for event in retries)


@pytest.mark.parametrize('name', AGENTS)
def test_the_error_headline_has_no_stack_trace(name: str) -> None:
    _, outcome = replay(name, '401')
    assert '401' in outcome.error and 'invalid API key' in outcome.error
    assert '\n' not in outcome.error and ' at ' not in outcome.error


def test_headline_skips_stack_frames_dumps_and_warnings() -> None:
    tail = ['Error when talking to the API: boom', '    at f (x.js:1:2)', '  status: 500', '}', '',
            'WARNING: proceeding, even though …']
    assert headline(tail) == 'Error when talking to the API: boom'
    assert headline(['    at f (x.js:1:2)']) is None


# --- command lines ---------------------------------------------------------------------------------------------

def test_claude_command_line(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(os, 'geteuid', lambda: 1000)
    spec = registry.get('claude-code').build(request(tmp_path, '--not-a-flag', model='opus', resume_id='abc'))
    assert spec.argv[:6] == ['claude', '-p', '--output-format', 'stream-json', '--verbose', '--include-partial-messages']
    assert spec.argv[-2:] == ['--', '--not-a-flag']
    assert spec.argv[spec.argv.index('--model') + 1] == 'opus'
    assert spec.argv[spec.argv.index('--resume') + 1] == 'abc'
    assert spec.env['CLAUDE_CODE_MAX_RETRIES'] == '1'
    assert spec.env['CLAUDE_CONFIG_DIR'] == str(tmp_path / 'state' / 'claude')
    assert spec.env['OPENAI_API_KEY'] == 'sk-test'  # the caller's env is passed on
    assert 'IS_SANDBOX' not in spec.env and spec.files_written == []


@pytest.mark.parametrize('uid, sandbox', [(0, '1'), (1000, None)])
def test_claude_bypass_as_root_sets_is_sandbox(tmp_path: Path, monkeypatch: pytest.MonkeyPatch, uid: int,
                                               sandbox: str | None) -> None:
    monkeypatch.setattr(os, 'geteuid', lambda: uid)
    spec = registry.get('claude-code').build(request(tmp_path, permission_mode='bypass'))
    assert spec.argv[spec.argv.index('--permission-mode') + 1] == 'bypassPermissions'
    assert spec.env.get('IS_SANDBOX') == sandbox


def test_claude_mcp_config_file(tmp_path: Path) -> None:
    servers = [McpServer('echo', command='python3', args=['echo.py'], env={'TOKEN': 'secret'}),
               McpServer('docs', transport='http', url='https://mcp.example/mcp',
                         headers={'Authorization': 'Bearer t'})]
    spec = registry.get('claude-code').build(request(tmp_path, mcp_servers=servers))
    [config_file] = spec.files_written
    assert stat.S_IMODE(config_file.stat().st_mode) == 0o600
    assert json.loads(config_file.read_text()) == {'mcpServers': {
        'echo': {'type': 'stdio', 'command': 'python3', 'args': ['echo.py'], 'env': {'TOKEN': 'secret'}},
        'docs': {'type': 'http', 'url': 'https://mcp.example/mcp',
                 'headers': {'Authorization': '${AGOR_MCP_DOCS_HEADER_0}'}}}}  # the CLI expands it from its env
    assert spec.env['AGOR_MCP_DOCS_HEADER_0'] == 'Bearer t' and 'Bearer t' not in config_file.read_text()
    assert spec.argv[spec.argv.index('--mcp-config') + 1] == str(config_file)
    allowed = spec.argv.index('--allowedTools')
    assert spec.argv[allowed + 1:allowed + 3] == ['mcp__echo', 'mcp__docs']
    assert spec.env['ENABLE_TOOL_SEARCH'] == 'false'
    assert 'secret' not in ' '.join(spec.argv)


@pytest.mark.parametrize('mode, asks', [('default', True), ('auto_edit', False), ('bypass', False), ('plan', False)])
def test_claude_asks_the_app_in_its_asking_mode(tmp_path: Path, mode: str, asks: bool) -> None:
    spec = registry.get('claude-code').build(request(tmp_path, permission_mode=mode, permission_prompt=('agor',
                                                                                                         'approve')))
    assert ('--permission-prompt-tool' in spec.argv) is asks
    if asks:
        assert spec.argv[spec.argv.index('--permission-prompt-tool') + 1] == 'mcp__agor__approve'


def codex_config(argv: list[str]) -> dict:
    """The `-c key=value` overrides of a Codex command line, parsed as TOML."""
    return tomllib.loads('\n'.join(argv[i + 1] for i, arg in enumerate(argv) if arg == '-c'))


def test_codex_custom_provider_from_openai_base_url(tmp_path: Path) -> None:
    spec = registry.get('codex').build(request(tmp_path, 'hi', model='gpt-5.5', resume_id='thread-1'))
    assert spec.argv[:4] == ['codex', 'exec', '--json', '--skip-git-repo-check']
    assert '--ignore-user-config' in spec.argv
    config = codex_config(spec.argv)
    assert config['model_provider'] == 'agor'
    assert config['model_providers']['agor'] == {
        'name': 'Agor', 'base_url': 'http://127.0.0.1:9/v1', 'env_key': 'OPENAI_API_KEY', 'wire_api': 'responses',
        'request_max_retries': 1, 'stream_max_retries': 1}
    assert spec.argv[spec.argv.index('-m') + 1] == 'gpt-5.5'
    assert spec.argv[-4:] == ['resume', 'thread-1', '--', 'hi']
    assert spec.env['CODEX_HOME'] == str(tmp_path / 'state' / 'codex')


def test_codex_without_base_url_uses_the_built_in_provider(tmp_path: Path) -> None:
    spec = registry.get('codex').build(request(tmp_path, env={'OPENAI_BASE_URL': ''}))
    assert '--ignore-user-config' not in spec.argv and 'model_provider' not in codex_config(spec.argv)


def test_codex_mcp_secrets_stay_off_the_command_line(tmp_path: Path) -> None:
    servers = [McpServer('echo', command='python3', args=['echo.py'], env={'ECHO_TOKEN': 'secret-1'}),
               McpServer('docs', transport='http', url='https://mcp.example/mcp', headers={'X-Key': 'secret-2'})]
    spec = registry.get('codex').build(request(tmp_path, mcp_servers=servers))
    servers_config = codex_config(spec.argv)['mcp_servers']
    assert servers_config['echo'] == {'default_tools_approval_mode': 'approve', 'required': True, 'command': 'python3',
                                      'args': ['echo.py'], 'env_vars': ['ECHO_TOKEN']}
    assert spec.env['ECHO_TOKEN'] == 'secret-1'
    [(header, variable)] = servers_config['docs']['env_http_headers'].items()
    assert header == 'X-Key' and spec.env[variable] == 'secret-2'
    assert servers_config['docs']['url'] == 'https://mcp.example/mcp'
    assert 'secret' not in ' '.join(spec.argv)


def test_codex_refuses_sse_mcp(tmp_path: Path) -> None:
    with pytest.raises(InvalidInput, match='SSE'):
        registry.get('codex').build(request(tmp_path, mcp_servers=[McpServer('s', transport='sse', url='http://x')]))


def test_toml_values_round_trip() -> None:
    value = {'name': 'A "quoted" name\n', 'list': ['a', 'ü'], 'n': 3}
    assert tomllib.loads(f'v={toml(value)}')['v'] == value


def test_gemini_settings_and_command_line(tmp_path: Path) -> None:
    server = McpServer('echo', command='python3', args=['echo.py'], env={'A': '1'})
    spec = registry.get('gemini').build(request(tmp_path, '-p trick', model='gemini-2.5-flash', resume_id='s-1',
                                                permission_mode='bypass', mcp_servers=[server]))
    settings_file, policy_file = spec.files_written
    assert settings_file == tmp_path / 'state' / 'gemini' / '.gemini' / 'settings.json'
    assert stat.S_IMODE(settings_file.stat().st_mode) == 0o600
    settings = json.loads(settings_file.read_text())
    assert settings['security']['auth']['selectedType'] == 'gemini-api-key'
    assert settings['general']['maxAttempts'] == 2
    assert settings['mcpServers'] == {'echo': {'command': 'python3', 'args': ['echo.py'], 'env': {'A': '1'},
                                               'trust': True}}
    assert spec.env['GEMINI_CLI_HOME'] == str(tmp_path / 'state' / 'gemini')
    assert '--skip-trust' in spec.argv and spec.argv[-1] == '--prompt=-p trick'
    assert spec.argv[spec.argv.index('--approval-mode') + 1] == 'yolo'
    assert spec.argv[spec.argv.index('--resume') + 1] == 's-1'


def test_gemini_remote_mcp_entries(tmp_path: Path) -> None:
    servers = [McpServer('h', transport='http', url='http://h/mcp', headers={'K': 'v'}),
               McpServer('s', transport='sse', url='http://s/sse')]
    settings = json.loads(registry.get('gemini').build(request(tmp_path, mcp_servers=servers)).files_written[0]
                          .read_text())
    assert settings['mcpServers'] == {'h': {'httpUrl': 'http://h/mcp', 'headers': {'K': '${AGOR_MCP_H_HEADER_0}'},
                                            'trust': True},
                                      's': {'url': 'http://s/sse', 'headers': {}, 'trust': True}}


def test_opencode_provider_mcp_and_prompt_on_stdin(tmp_path: Path) -> None:
    servers = [McpServer('echo', command='python3', args=['echo.py'], env={'A': '1'}),
               McpServer('docs', transport='http', url='http://d/mcp', headers={'K': 'v'})]
    spec = registry.get('opencode').build(request(tmp_path, 'say "hi"  42', model='fake-model', resume_id='ses_1',
                                                  mcp_servers=servers))
    assert spec.argv[:4] == ['opencode', 'run', '--format', 'json']
    assert spec.argv[spec.argv.index('-m') + 1] == 'agor/fake-model'
    assert spec.argv[spec.argv.index('--session') + 1] == 'ses_1'
    assert spec.stdin == 'say "hi"  42' and 'say "hi"  42' not in spec.argv
    config = json.loads(spec.env['OPENCODE_CONFIG_CONTENT'])
    provider = config['provider']['agor']
    assert provider['npm'] == '@ai-sdk/openai-compatible'
    assert provider['options'] == {'baseURL': 'http://127.0.0.1:9/v1', 'apiKey': '{env:OPENAI_API_KEY}'}
    assert list(provider['models']) == ['fake-model']
    assert config['mcp'] == {
        'echo': {'type': 'local', 'command': ['python3', 'echo.py'], 'environment': {'A': '1'}, 'enabled': True},
        'docs': {'type': 'remote', 'url': 'http://d/mcp', 'headers': {'K': 'v'}, 'enabled': True}}
    assert spec.env['XDG_DATA_HOME'] == str(tmp_path / 'state' / 'opencode' / 'data')


def test_opencode_without_base_url_uses_the_model_as_given(tmp_path: Path) -> None:
    spec = registry.get('opencode').build(request(tmp_path, model='anthropic/claude-x', env={'OPENAI_BASE_URL': ''}))
    assert spec.argv[spec.argv.index('-m') + 1] == 'anthropic/claude-x'
    assert 'provider' not in json.loads(spec.env['OPENCODE_CONFIG_CONTENT'])


def test_shell_command_line(tmp_path: Path) -> None:
    spec = registry.get('shell').build(request(tmp_path, '--help; echo hi'))
    assert spec.argv == ['bash', '-lc', '--', '--help; echo hi'] and spec.merge_stderr


def test_unknown_permission_mode_is_refused(tmp_path: Path) -> None:
    with pytest.raises(InvalidInput, match="OpenCode has no permission mode 'auto_edit'"):
        registry.get('opencode').build(request(tmp_path, permission_mode='auto_edit'))


@pytest.mark.parametrize('fields, message', [
    ({'name': 'bad name'}, 'letters, digits'), ({'name': 'x'}, 'needs a command'),
    ({'name': 'x', 'transport': 'http'}, 'needs a URL')])
def test_mcp_server_validation(fields: dict, message: str) -> None:
    with pytest.raises(InvalidInput, match=message):
        McpServer(**fields)


# --- registry --------------------------------------------------------------------------------------------------

def test_get_unknown_runtime() -> None:
    with pytest.raises(InvalidInput, match="Unknown agent runtime 'cursor'"):
        registry.get('cursor')


def test_find_binary_and_versions_from_the_cli_dir(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    bin_dir = tmp_path / 'clis' / 'node_modules' / '.bin'
    bin_dir.mkdir(parents=True)
    fake = bin_dir / 'codex'
    fake.write_text('#!/bin/sh\necho "codex-cli 9.9.9"\n')
    fake.chmod(0o755)
    monkeypatch.setenv('PATH', str(tmp_path / 'empty'))
    clis = tmp_path / 'clis'
    assert registry.find_binary(registry.get('codex'), clis) == str(fake)
    assert registry.find_binary(registry.get('claude-code'), clis) is None
    statuses = {status.name: status for status in registry.installed(clis)}
    assert statuses['codex'].path == str(fake) and statuses['codex'].version == 'codex-cli 9.9.9'
    assert statuses['claude-code'].path is None and statuses['claude-code'].version is None
    assert statuses['claude-code'].install_command == 'npm i -g @anthropic-ai/claude-code@2.1.331'
    assert list(statuses) == ['node', 'claude-code', 'codex', 'gemini', 'opencode', 'shell']


def test_the_pinned_cli_wins_over_path_and_runs_on_the_projects_node(tmp_path: Path,
                                                                       monkeypatch: pytest.MonkeyPatch) -> None:
    """Debian 12's own node is 18 (too old for the Gemini CLI): the CLIs run on the Node of the app's environment,
    whatever PATH holds, and a CLI someone installed on PATH does not shadow the pinned one."""
    pinned, stray = tmp_path / 'clis' / 'node_modules' / '.bin', tmp_path / 'on-path'
    scripts = {pinned: 'console.log(`codex on node ${process.version}`)', stray: 'console.log("stray")'}
    for directory, body in scripts.items():
        directory.mkdir(parents=True)
        (directory / 'codex').write_text(f'#!/usr/bin/env node\n{body}\n')
        (directory / 'codex').chmod(0o755)
    monkeypatch.setenv('PATH', str(stray))
    clis = tmp_path / 'clis'
    assert registry.find_binary(registry.get('codex'), clis) == str(pinned / 'codex')
    statuses = {status.name: status for status in registry.installed(clis)}
    node = statuses['node']
    assert node.path and int(node.version.lstrip('v').split('.')[0]) >= 20
    assert statuses['codex'].version == f'codex on node {node.version}'


def test_the_catalog_has_an_entry_per_runtime_and_refuses_a_misspelt_field(monkeypatch):
    """agor/runtimes/clis.toml: what each runtime is. A field it does not know fails at import, not silently."""
    assert {name for name in catalog() if name != 'reasons'} == set(registry.RUNTIMES)
    monkeypatch.setitem(catalog(), 'typo', {'label': 'Typo', 'binary': 'typo', 'unattended': 'Asks nobody.',
                                            'permission_modes': {'default': {'args': [], 'help': 'As given.'}},
                                            'default_permision_mode': 'default'})
    with pytest.raises(TypeError, match=r'clis.toml \[typo\]: no such field default_permision_mode'):
        type('TypoRuntime', (ShellRuntime,), {'name': 'typo'})
