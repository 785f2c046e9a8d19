"""A schema-driven fuzz run (schemathesis) of /api/openapi.json against the real app on loopback, as its owner: no 5xx,
no response outside its documented status codes, content types and schemas. The number of cases is printed and
recorded in docs/api.md. The session stream is left out (it never ends by itself); tests/test_api.py covers it."""
from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import httpx

from agor import api_keys, db
from agor.config import load_settings
from agor.models import Role

from .app_server import clean_env, running_app
from .conftest import seed_board

CHECKS = 'not_a_server_error,status_code_conformance,content_type_conformance,response_schema_conformance'


def test_the_api_survives_a_schemathesis_run_against_its_own_openapi_document(tmp_path, git_repo, monkeypatch):
    with running_app(tmp_path / 'app', AGOR_API_REQUESTS_PER_MINUTE='1000000') as server:
        db.init(server.database_url)
        settings = load_settings(data_dir=str(server.data_dir))
        seeded = seed_board(settings, git_repo, bob=Role.member)
        _, key = api_keys.create(settings, seeded.owner, 'fuzz')
        auth = {'Authorization': f'Bearer {key}'}
        session_id = httpx.post(f'{server.url}/api/v1/sessions', headers=auth, timeout=30,
                                json={'worktree': seeded.worktree.id, 'agent': 'shell'}).json()['id']
        comment_id = httpx.post(f'{server.url}/api/v1/boards/sprint/comments', headers=auth, timeout=30,
                                json={'body': 'fuzz here'}).json()['id']
        config = tmp_path / 'schemathesis.toml'  # real objects to reach past the 404s
        config.write_text('[parameters]\n' + ''.join(f'"path.{name}" = "{value}"\n' for name, value in (
            ('board', 'sprint'), ('worktree', seeded.worktree.id), ('zone_id', seeded.zone.id),
            ('session_id', session_id), ('comment_id', comment_id))))
        report = tmp_path / 'report.json'
        run = subprocess.run(
            [str(Path(sys.executable).parent / 'st'), '--config-file', str(config), 'run',
             f'{server.url}/api/openapi.json', '--url', server.url, '-H', f'Authorization: Bearer {key}',
             '--checks', CHECKS, '--exclude-path-regex', 'stream$', '--phases', 'coverage,fuzzing', '-n', '10',
             '--seed', '1', '--workers', '2', '--generation-database', 'none', '--no-color',
             '--report', 'json', '--report-json-path', str(report)],
            check=False, capture_output=True, text=True, timeout=600, cwd=tmp_path, env=clean_env())
        result = json.loads(report.read_text())
        print(f'schemathesis: {result["test_cases"]["generated"]} cases over {result["operations"]["tested"]} '
              f'operations in {result["running_time"]:.0f} s')
        assert run.returncode == 0 and result['failures'] == [] and result['errors'] == [], run.stdout[-5000:]
        assert result['operations']['tested'] >= 30 and result['test_cases']['generated'] >= 500
        assert 'Traceback' not in server.log.read_text()
