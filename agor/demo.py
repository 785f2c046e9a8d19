"""Demo mode: a realistic team with boards, zones and real worktrees of a generated repo; resettable."""
from __future__ import annotations

import logging
import shutil
from pathlib import Path

from sqlalchemy import delete
from sqlmodel import SQLModel

from . import auth, boards, db, events, gitops, repos
from .config import Settings
from .models import Role, User

log = logging.getLogger(__name__)

DEMO_PASSWORD = 'demo-password'
TEAM = [('Alice Chen', 'alice@example.com', Role.owner), ('Bob Martin', 'bob@example.com', Role.admin),
        ('Carol Diaz', 'carol@example.com', Role.member), ('Dan Okafor', 'dan@example.com', Role.viewer)]
ZONES = [('Backlog', '#64748b', '#f1f5f9'), ('In progress', '#2563eb', '#eff6ff'), ('Review', '#0d9488', '#f0fdfa')]
# board name -> [(worktree, zone index or None, x, y)]
LAYOUT = {
    'Sprint 42': [('auth-fix', 0, 40, 70), ('flaky-tests', 0, 40, 190), ('billing-v2', 1, 40, 70),
                  ('search-api', 1, 40, 190), ('rate-limits', 2, 40, 70), ('docs-refresh', None, 1900, 120)],
    'Platform': [('perf-cache', 0, 40, 70), ('onboarding-flow', 1, 40, 70), ('ci-speedup', 2, 40, 70)],
}
ICONS = {'Sprint 42': 'directions_run', 'Platform': 'construction'}
# the Review zone's trigger: a shell command (no agent account needed) that sums up the branch for its reviewer
REVIEW_TRIGGER = ('echo "Review of {{ worktree.name }} for {{ user.name }}"; '
                  'git log --oneline -5; git diff --stat {{ worktree.base }}...HEAD')
FILES = {
    'README.md': '# acme-api\n\nThe API behind Acme\'s billing and auth.\n',
    'app/auth.py': 'def login(user, password):\n    return user.check(password)\n',
    'app/billing.py': 'def invoice(total):\n    return round(total * 1.2, 2)\n',
    'tests/test_auth.py': 'def test_login():\n    assert True\n',
}


def ensure_seeded(settings: Settings) -> None:
    if not auth.has_users():
        seed(settings)


def reset(settings: Settings) -> None:
    """Delete everything and seed again; every open page reloads."""
    with db.transaction() as session:
        for table in reversed(SQLModel.metadata.sorted_tables):
            session.exec(delete(table))  # type: ignore[call-overload]
    shutil.rmtree(settings.worktrees_dir, ignore_errors=True)
    shutil.rmtree(settings.repos_dir, ignore_errors=True)
    shutil.rmtree(settings.data_dir / 'demo', ignore_errors=True)
    seed(settings)
    events.bus.publish(events.INSTANCE_TOPIC, events.InstanceReset(type='reset'))


def reset_by(actor: User, settings: Settings) -> None:
    """The admin page's reset button."""
    auth.require(actor, Role.admin, 'reset the demo')
    reset(settings)


def seed(settings: Settings) -> None:
    (owner_name, owner_email, _), *team = TEAM
    owner = auth.create_first_owner(owner_email, owner_name, DEMO_PASSWORD)
    for name, email, role in team:
        auth.create_user(owner, email, name, DEMO_PASSWORD, role)
    repo_path = _make_repo(settings.data_dir / 'demo' / 'acme-api')
    settings.repo_roots.append(repo_path.parent)
    repo = repos.register_local(settings, owner, str(repo_path), 'acme-api')
    for board_name, cards in LAYOUT.items():
        board = boards.create_board(owner, board_name, f'Demo board: {board_name.lower()} work in flight',
                                    icon=ICONS[board_name])
        zone_ids = [boards.create_zone(owner, board.id, label, 620 * i, 0, 560, 420, border, background).id
                    for i, (label, border, background) in enumerate(ZONES)]
        boards.update_zone(owner, zone_ids[-1], trigger_template=REVIEW_TRIGGER, trigger_runtime='shell')
        for name, zone_index, x, y in cards:
            worktree = repos.create_worktree(settings, owner, repo.id, name)
            offset = 620 * zone_index if zone_index is not None else 0
            boards.place_card(owner, board.id, worktree.id, offset + x, y)
        log.info('demo board %s seeded with zones %s', board.slug, zone_ids)


def _make_repo(path: Path) -> Path:
    path.mkdir(parents=True, exist_ok=True)
    gitops.git('init', '--quiet', '-b', 'main', cwd=path)
    for index, (name, text) in enumerate(FILES.items()):
        file = path / name
        file.parent.mkdir(parents=True, exist_ok=True)
        file.write_text(text)
        gitops.git('add', name, cwd=path)
        gitops.git('-c', 'user.name=Demo', '-c', 'user.email=demo@example.com', 'commit', '--quiet', '-m',
                   f'Add {name}' if index else 'Initial commit', cwd=path)
    return path.resolve()
