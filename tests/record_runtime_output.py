"""Records what the real agent CLIs print against the fake model server, for tests/test_runtimes.py and
tests/test_transcripts.py: `python -m tests.record_runtime_output` (from the repository, with AGOR_AGENT_CLI_DIR set).

Per CLI and case it writes tests/fixtures/runtime_output/<cli>_<case>.jsonl (stdout) and .stderr, and the exit codes
into exit_codes.json. Cases: plain, resume (of plain), shell (bypass mode), mcp, 401, 500 (one retry allowed).
"""
from __future__ import annotations

import asyncio
import json
import os
import subprocess
import sys
import tempfile
from pathlib import Path

from agor.config import Settings
from agor.runtimes import registry
from agor.runtimes.base import McpServer, RunRequest, Turn

from .fake_model_server import FakeModelServer
from .runtime_fixtures import ECHO_SERVER

OUT = Path(__file__).parent / 'fixtures' / 'runtime_output'
CASES = {'plain': ('Say hi [[plain]]', {}), 'resume': ('Again [[plain]]', {}),
         'shell': ('Run it [[shell:printf agor-%s 42]]', {'permission_mode': 'bypass'}),
         'mcp': ('Echo [[mcp:hello]]', {}), '401': ('Fail [[401]]', {}), '500': ('Fail [[500]]', {})}


async def record(name: str, case: str, request: RunRequest) -> tuple[int, str]:
    runtime = registry.get(name)
    spec = runtime.build(request)
    process = await asyncio.create_subprocess_exec(
        registry.find_binary(runtime, request.cli_dir), *spec.argv[1:], cwd=request.cwd,
        env=registry.with_node_on_path(dict(spec.env), request.cli_dir),
        stdin=asyncio.subprocess.PIPE, stdout=asyncio.subprocess.PIPE, stderr=asyncio.subprocess.PIPE,
        start_new_session=True)
    stdout, stderr = await process.communicate((spec.stdin or '').encode())
    prefix = OUT / f'{name.split("-")[0]}_{case}'
    prefix.with_suffix('.jsonl').write_bytes(stdout)
    prefix.with_suffix('.stderr').write_bytes(stderr)
    turn, events = Turn(), []
    for line in stdout.decode().splitlines():
        events += runtime.parse_line(line, turn)
    return process.returncode, runtime.outcome(process.returncode, events, []).resume_id or ''


async def main(names: list[str]) -> None:
    fake = FakeModelServer().start()
    codes = json.loads((OUT / 'exit_codes.json').read_text()) if (OUT / 'exit_codes.json').exists() else {}
    with tempfile.TemporaryDirectory() as tmp:
        root = Path(tmp)
        (root / 'repo').mkdir()
        (root / 'home').mkdir()
        subprocess.run(['git', 'init', '-q'], cwd=root / 'repo', check=True)
        env = {'PATH': os.environ['PATH'], 'HOME': str(root / 'home'), 'LANG': 'C.UTF-8',
               'ANTHROPIC_BASE_URL': fake.url, 'ANTHROPIC_API_KEY': 'test-key-anthropic',
               'OPENAI_BASE_URL': f'{fake.url}/v1', 'OPENAI_API_KEY': 'test-key-openai',
               'GEMINI_API_KEY': 'test-key-gemini', 'GOOGLE_GEMINI_BASE_URL': fake.url,
               'npm_config_offline': 'true'}
        echo = McpServer('echo', command=sys.executable, args=[str(ECHO_SERVER)], env={'ECHO_TAG': 'tagged'})
        for name in names:
            resume_id = None
            for case, (prompt, fields) in CASES.items():
                request = RunRequest(prompt, root / 'repo', root / 'state', env, model='fake-model',
                                     max_retries=1 if case == '500' else 0, cli_dir=Settings().agent_cli_dir,
                                     resume_id=resume_id if case == 'resume' else None,
                                     mcp_servers=[echo] if case == 'mcp' else [], **fields)
                code, session = await record(name, case, request)
                codes[f'{name}_{case}'] = code
                resume_id = session if case == 'plain' else resume_id
                print(name, case, 'exit', code, flush=True)
    fake.stop()
    (OUT / 'exit_codes.json').write_text(json.dumps(codes, indent=1, sort_keys=True) + '\n')


if __name__ == '__main__':
    asyncio.run(main(sys.argv[1:] or ['claude-code', 'codex', 'gemini', 'opencode']))
