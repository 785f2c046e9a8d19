"""The one settings object: a bad value stops a real `main.py` with one clear line; the README's configuration table
and the settings' fields name the same variables; the wheel carries what the app needs."""
from __future__ import annotations

import re
import shutil
import subprocess
import sys
import zipfile
from pathlib import Path

import pytest

from agor.config import env_names

from .app_server import ROOT, clean_env, free_port

BAD_VALUES = [  # variable, value, what the one line must say is expected
    ('AGOR_PORT', 'abc', 'valid integer'),
    ('AGOR_PORT', '70000', 'less than or equal to 65535'),
    ('AGOR_UNIX_USER_MODE', 'lax', "'simple', 'insulated' or 'strict'"),
    ('AGOR_TRUSTED_PROXIES', '127.0.0.1, proxy.example', 'comma-separated list of addresses or networks'),
    ('AGOR_UNIX_ACCOUNTS', 'alice@example.com', 'comma-separated list of email=unix-account pairs'),
    ('AGOR_DEMO', 'maybe', 'valid boolean'),
    ('AGOR_SESSION_STUCK_SECONDS', '0', 'greater than or equal to 1'),
    ('AGOR_AGENT_MAX_RETRIES', 'many', 'valid integer'),
]


def start_main(tmp_path: Path, *args: str, **env: str) -> subprocess.CompletedProcess:
    """Run the real main.py; with a bad setting it exits at once (a started app would run into the timeout)."""
    return subprocess.run([sys.executable, str(ROOT / 'main.py'), *args], cwd=tmp_path, capture_output=True, text=True,
                          timeout=60, env=clean_env(**{'AGOR_DATA_DIR': str(tmp_path / 'data'),
                                                       'AGOR_PORT': str(free_port()), 'AGOR_HOST': '127.0.0.1', **env}))


@pytest.mark.parametrize('variable, value, expected', BAD_VALUES)
def test_a_bad_value_stops_the_start_with_one_line_naming_the_variable(tmp_path, variable, value, expected):
    done = start_main(tmp_path, **{variable: value})
    assert done.returncode == 2, done.stderr[-2000:]
    [line] = done.stderr.splitlines()
    assert line.startswith(f'Agor cannot start: {variable}={value!r}: ') and expected in line


def test_a_bad_flag_is_named_as_the_flag_and_every_bad_variable_gets_its_line(tmp_path):
    done = start_main(tmp_path, '--port', '0', AGOR_DEMO_RESET_MINUTES='-5', AGOR_DEMO='on')
    assert done.returncode == 2 and 'Traceback' not in done.stderr
    assert [line.split(': ')[1] for line in done.stderr.splitlines()] == ["--port=0", "AGOR_DEMO_RESET_MINUTES='-5'"]


@pytest.mark.parametrize('variable, value, named', [
    ('AGOR_AGENT_ENV_ANTHROPIC-KEY', 'sk-secret-value', "AGOR_AGENT_ENV_<NAME>: <NAME> is a variable name (letters, "
                                                        "digits, _), not 'ANTHROPIC-KEY'"),
    ('DATABASE_URL', 'postgresql//agor:sk-secret-value@db/agor', 'DATABASE_URL: a database URL such as'),
    ('REDIS_URL', 'redis//:sk-secret-value@cache:6379', 'REDIS_URL: a Redis URL such as redis://'),
    ('AGOR_OWNER_PASSWORD', 'sk-secr', 'AGOR_OWNER_PASSWORD: String should have at least 8 characters'),
    ('AGOR_MASTER_SECRET', 'sk-secr', 'AGOR_MASTER_SECRET: at least 32 characters')])
def test_a_bad_secret_is_named_but_its_value_never_shown(tmp_path, variable, value, named):
    done = start_main(tmp_path, **{variable: value})
    assert done.returncode == 2 and 'Traceback' not in done.stderr
    assert named in done.stderr and 'sk-secr' not in done.stderr


def test_the_readme_table_and_the_settings_name_the_same_variables():
    readme = (ROOT / 'README.md').read_text()
    table = readme.split('## Configuration', 1)[1].split('\n## ', 1)[0]
    first_column = [line.split('|')[1] for line in table.splitlines() if line.startswith('| `')]
    documented = {name for cell in first_column for name in re.findall(r'`((?:AGOR_|DATABASE_URL|REDIS_URL)[A-Z_<>]*)', cell)}
    assert documented == set(env_names().values())


def test_the_wheel_carries_pages_components_their_assets_and_the_migrations(tmp_path):
    source = tmp_path / 'source'
    shutil.copytree(ROOT, source, ignore=shutil.ignore_patterns('.git', '.venv', 'data', 'build', '*.egg-info',
                                                                '__pycache__', '.pytest_cache', '.ruff_cache'))
    done = subprocess.run([sys.executable, '-m', 'pip', 'wheel', '--no-deps', '-q', '-w', str(tmp_path / 'dist'),
                           str(source)], capture_output=True, text=True, timeout=600)
    assert done.returncode == 0, done.stderr[-3000:]
    [wheel] = (tmp_path / 'dist').glob('agor_py-*.whl')
    names = set(zipfile.ZipFile(wheel).namelist())
    needed = {path.relative_to(ROOT).as_posix() for folder in ('agor', 'pages', 'components')
              for path in (ROOT / folder).rglob('*') if path.is_file() and '__pycache__' not in path.parts}
    assert needed <= names, sorted(needed - names)
    assert {'components/board_canvas.js', 'components/session.css', 'components/sounds/bell.wav',
            'agor/migrations/script.py.mako', 'agor/migrations/versions/0001_initial_schema.py',
            'agor/runtimes/clis.toml'} <= names
    metadata = zipfile.ZipFile(wheel).read(next(n for n in names if n.endswith('.dist-info/METADATA'))).decode()
    assert 'Requires-Dist: pydantic-settings' in metadata
    entry_points = zipfile.ZipFile(wheel).read(next(n for n in names if n.endswith('.dist-info/entry_points.txt')))
    assert entry_points.decode().split() == ['[console_scripts]', 'agor', '=', 'agor.cli:main']  # agor/cli.py


def test_a_redis_that_does_not_answer_stops_the_start_without_showing_the_url(tmp_path):
    done = start_main(tmp_path, REDIS_URL=f'redis://:sk-secret-value@127.0.0.1:{free_port()}/0')
    assert done.returncode == 2 and 'Traceback' not in done.stderr
    assert done.stderr.strip() == 'Agor cannot start: REDIS_URL: no Redis answers there (ConnectionError)'
