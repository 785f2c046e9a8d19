"""Fixtures for the agent runtime tests (loaded from conftest through `pytest_plugins`)."""
from __future__ import annotations

import os
import subprocess
import sys
from collections.abc import Callable, Iterator
from pathlib import Path

import pytest

from agor.config import Settings
from agor.runtimes.base import McpServer, RunRequest

from .fake_model_server import FakeModelServer

ECHO_SERVER = Path(__file__).with_name('mcp_echo_server.py')


@pytest.fixture
def fake_model() -> Iterator[FakeModelServer]:
    server = FakeModelServer().start()
    yield server
    server.stop()


@pytest.fixture
def agent_env(fake_model: FakeModelServer, tmp_path: Path) -> dict[str, str]:
    """What a session service would hand a run: PATH, a private HOME, keys and endpoints of the fake server."""
    home = tmp_path / 'home'
    home.mkdir()
    return {
        'PATH': os.environ['PATH'], 'HOME': str(home), 'LANG': 'C.UTF-8',
        'ANTHROPIC_BASE_URL': fake_model.url, 'ANTHROPIC_API_KEY': 'test-key-anthropic',
        'OPENAI_BASE_URL': f'{fake_model.url}/v1', 'OPENAI_API_KEY': 'test-key-openai',
        'GEMINI_API_KEY': 'test-key-gemini', 'GOOGLE_GEMINI_BASE_URL': fake_model.url,
        'npm_config_offline': 'true',  # OpenCode would fetch its plugin package into a new config dir
    }


@pytest.fixture
def make_request(agent_env: dict[str, str], tmp_path: Path) -> Callable[..., RunRequest]:
    """make_request(prompt, env={extra}, **fields) -> a RunRequest in a fresh `git init` repo with a per-test state
    dir, the CLIs of AGOR_AGENT_CLI_DIR and no retries."""
    cwd = tmp_path / 'repo'
    cwd.mkdir()
    subprocess.run(['git', 'init', '-q'], cwd=cwd, check=True)

    def make(prompt: str, **fields) -> RunRequest:
        env = {**agent_env, **fields.pop('env', {})}
        defaults = {'model': 'fake-model', 'max_retries': 0, 'cli_dir': Settings().agent_cli_dir}
        return RunRequest(prompt, cwd, tmp_path / 'state', env, **{**defaults, **fields})
    return make


@pytest.fixture
def echo_mcp() -> McpServer:
    """The one-tool stdio MCP server of tests/mcp_echo_server.py, tagging its answers 'tagged'."""
    return McpServer('echo', command=sys.executable, args=[str(ECHO_SERVER)], env={'ECHO_TAG': 'tagged'})
