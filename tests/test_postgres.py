"""Runs the migrations and a board round-trip against a private, throwaway PostgreSQL server."""
from __future__ import annotations

import pytest

from agor import auth, boards, db
from agor.models import Role

from .conftest import PASSWORD
from .servers import INITDB
from .test_migrations import schema_diff

# skipped only where PostgreSQL cannot be installed; `-ra` prints this reason in the summary
pytestmark = [pytest.mark.postgres,
              pytest.mark.skipif(not INITDB, reason='PostgreSQL is not installed: /usr/lib/postgresql/*/bin/initdb not found')]


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
