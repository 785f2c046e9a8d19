"""Runs the migrations and a board round-trip against a private, throwaway PostgreSQL server."""
from __future__ import annotations

import glob
import os
import re
import shutil
import socket
import subprocess
import tempfile
from pathlib import Path

import pytest

from agor import auth, boards, db
from agor.models import Role

from .conftest import PASSWORD
from .test_migrations import schema_diff

INITDB = sorted(glob.glob('/usr/lib/postgresql/*/bin/initdb'), key=lambda path: [int(n) for n in re.findall(r'\d+', path)])
# skipped only where PostgreSQL cannot be installed; `-ra` prints this reason in the summary
pytestmark = [pytest.mark.postgres,
              pytest.mark.skipif(not INITDB, reason='PostgreSQL is not installed: /usr/lib/postgresql/*/bin/initdb not found')]


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(('127.0.0.1', 0))
        return sock.getsockname()[1]


@pytest.fixture
def postgres_url():
    """Starts a PostgreSQL server on loopback and a free port, yields its URL, and always stops it again."""
    bin_dir = Path(INITDB[-1]).parent  # the newest installed version
    # Not under tmp_path: pytest makes its base temp dir private to root, and the server may run as `postgres`.
    root = Path(tempfile.mkdtemp(prefix='agor-pg-'))
    as_root = os.geteuid() == 0  # initdb refuses to run as root
    if as_root:
        shutil.chown(root, 'postgres', 'postgres')

    def run(*args: str) -> None:
        command = ['runuser', '-u', 'postgres', '--', *args] if as_root else list(args)
        subprocess.run(command, cwd=root, check=True, capture_output=True, text=True, timeout=60)

    data, log, port = root / 'data', root / 'server.log', free_port()
    started = False
    try:
        run(str(bin_dir / 'initdb'), '-D', str(data), '-A', 'trust', '-U', 'agor', '-E', 'UTF8', '--no-locale')
        options = f'-c listen_addresses=127.0.0.1 -p {port} -k {root}'
        started = True  # from here on a half-started server must be stopped too
        try:
            run(str(bin_dir / 'pg_ctl'), '-D', str(data), '-l', str(log), '-o', options, '-w', '-t', '30', 'start')
        except subprocess.CalledProcessError as error:
            raise RuntimeError(f'PostgreSQL did not start:\n{error.stdout}{error.stderr}\n{log.read_text()}') from error
        run(str(bin_dir / 'pg_isready'), '-h', '127.0.0.1', '-p', str(port), '-U', 'agor', '-d', 'postgres')
        yield f'postgresql://agor@127.0.0.1:{port}/postgres'
    finally:
        try:
            if started:
                run(str(bin_dir / 'pg_ctl'), '-D', str(data), '-m', 'immediate', 'stop')
        finally:
            shutil.rmtree(root)


def test_migrations_and_board_round_trip_on_postgres(postgres_url):
    try:
        db.init(postgres_url)
        assert db.engine().dialect.name == 'postgresql'
        assert schema_diff(db.engine()) == []

        owner = auth.create_first_owner('owner@example.com', 'Olivia Owner', PASSWORD)
        member = auth.create_user(owner, 'mia@example.com', 'Mia Member', PASSWORD, Role.member)
        first, second = boards.create_board(member, 'Sprint Plan'), boards.create_board(member, 'Sprint Plan')
        assert (first.slug, second.slug) == ('sprint-plan', 'sprint-plan-2')
        assert boards.get_board(owner, 'sprint-plan-2').id == second.id
        assert boards.get_board(owner, first.id[:8]).id == first.id

        zone = boards.create_zone(member, first.id, 'Review', x=500, y=0, w=480, h=320)
        boards.update_zone(member, zone.id, x=600)
        state = boards.board_state(owner, first.id)
        assert [(z['id'], z['label'], z['x'], z['y'], z['w'], z['h']) for z in state['zones']] == [
            (zone.id, 'Review', 600, 0, 480, 320)]
        assert state['cards'] == []
        assert boards.board_state(owner, second.id) == {'zones': [], 'cards': []}
    finally:
        db.engine().dispose()


def test_racing_drops_fire_once_on_postgres(postgres_url, git_repo):
    """Eight threads drop the same card into a triggered zone at once: one firing, one session (READ COMMITTED)."""
    from agor import triggers
    from agor.config import load_settings

    from .conftest import seed_board
    from .test_triggers import TEMPLATE, race_drops
    try:
        db.init(postgres_url)
        team = seed_board(load_settings(), git_repo, bob=Role.member)
        boards.update_zone(team.owner, team.zone.id, trigger_template=TEMPLATE, trigger_runtime='shell')
        results = race_drops([team.owner, team.users['bob']], team.board.id, team.worktree.id)
        assert len([r for r in results if r is not None]) == 1
        assert [h['status'] for h in triggers.history(team.owner, team.zone.id)] == ['started']
        assert boards.board_state(team.owner, team.board.id)['cards'][0]['sessions'][0]['status'] == 'idle'
    finally:
        db.engine().dispose()


def test_racing_looks_and_follows_on_postgres(postgres_url, git_repo):
    from agor.config import load_settings

    from .test_sessions import racing_looks_and_follows
    try:
        db.init(postgres_url)
        racing_looks_and_follows(load_settings(), git_repo)
    finally:
        db.engine().dispose()
