import os
import subprocess

import pytest

from agor import boards, repos
from agor.errors import Conflict, Forbidden, InvalidInput, NotFound


def branches(path):
    return subprocess.run(['git', 'branch', '--format=%(refname:short)'], cwd=path, capture_output=True,
                          text=True).stdout.split()


@pytest.fixture
def repo(settings, make_user, git_repo):
    return repos.register_local(settings, make_user('owner'), str(git_repo))


def test_worktree_is_a_real_git_worktree_under_the_data_dir(settings, make_user, repo, git_repo):
    member = make_user('member')
    worktree = repos.create_worktree(settings, member, repo.id, 'auth-fix')
    path = settings.worktrees_dir / repo.slug / 'auth-fix'
    assert worktree.path == str(path) and (path / 'app.py').exists()
    listed = subprocess.run(['git', 'worktree', 'list'], cwd=git_repo, capture_output=True, text=True).stdout
    assert str(path) in listed and 'auth-fix' in branches(git_repo)


def test_worktree_on_an_existing_branch(settings, make_user, repo):
    worktree = repos.create_worktree(settings, make_user('member'), repo.id, 'feat', 'feature', new_branch=False)
    assert worktree.branch == 'feature'


def test_worktree_errors_are_clear(settings, make_user, repo):
    member = make_user('member')
    repos.create_worktree(settings, member, repo.id, 'one')
    with pytest.raises(Conflict, match='already has a worktree named one'):
        repos.create_worktree(settings, member, repo.id, 'one', 'other-branch')
    with pytest.raises(Conflict, match='Branch feature already exists'):
        repos.create_worktree(settings, member, repo.id, 'two', 'feature')
    with pytest.raises(NotFound, match='no branch nope'):
        repos.create_worktree(settings, member, repo.id, 'three', 'nope', new_branch=False)
    with pytest.raises(InvalidInput, match='not a valid branch'):
        repos.create_worktree(settings, member, repo.id, 'four', 'bad..name')
    with pytest.raises(InvalidInput, match='lower-case'):
        repos.create_worktree(settings, member, repo.id, '../escape')
    with pytest.raises(NotFound, match='to start from'):
        repos.create_worktree(settings, member, repo.id, 'five', base='no-such-ref')
    with pytest.raises(Forbidden):
        repos.create_worktree(settings, make_user('viewer'), repo.id, 'six')
    assert [w['name'] for w in repos.list_worktrees(member, repo.id)] == ['one']


def test_registering_checks_the_path(settings, make_user, tmp_path, git_repo):
    owner = make_user('owner')
    (tmp_path / 'plain').mkdir()
    with pytest.raises(InvalidInput, match='not a git repository'):
        repos.register_local(settings, owner, str(tmp_path / 'plain'))
    with pytest.raises(InvalidInput, match='not a directory'):
        repos.register_local(settings, owner, str(tmp_path / 'missing'))
    settings.repo_roots = []
    with pytest.raises(Forbidden, match='outside the allowed roots'):
        repos.register_local(settings, owner, str(git_repo))
    with pytest.raises(Forbidden):
        repos.register_local(settings, make_user('member'), str(git_repo))


def test_clone_from_a_path(settings, make_user, git_repo):
    repo = repos.clone(settings, make_user('owner'), str(git_repo), 'shop-clone')
    assert repo.default_branch == 'main' and (settings.repos_dir / 'shop-clone' / 'app.py').exists()
    with pytest.raises(InvalidInput):
        repos.clone(settings, make_user('admin'), '--upload-pack=touch /tmp/pwned')


@pytest.fixture
def outside_repo(tmp_path_factory):
    """A real repository outside the allowed roots (the tests' AGOR_REPO_ROOTS is their own tmp_path)."""
    path = tmp_path_factory.mktemp('elsewhere') / 'secret-repo'
    path.mkdir()
    subprocess.run(['git', 'init', '-q', '-b', 'main'], cwd=path, check=True)
    (path / 'keys.txt').write_text('not for the team\n')
    subprocess.run(['git', 'add', 'keys.txt'], cwd=path, check=True)
    subprocess.run(['git', '-c', 'user.name=T', '-c', 'user.email=t@example.com', 'commit', '-qm', 'k'], cwd=path,
                   check=True)
    return path


def test_cloning_a_server_path_obeys_the_allowed_roots(settings, make_user, git_repo, outside_repo, tmp_path):
    """A clone copies a server path into the data dir: the same rule as registering it, for a path, a file:// URL
    (also with localhost and percent-escapes), a `..` detour and a symlink that leads out."""
    admin = make_user('admin')
    (tmp_path / 'link').symlink_to(outside_repo)
    escaped = str(outside_repo).replace('secret', '%73ecret')
    for source in (str(outside_repo), f'file://{outside_repo}', f'file://localhost{outside_repo}', f'file://{escaped}',
                   f'{tmp_path}/{os.path.relpath(outside_repo, tmp_path)}', str(tmp_path / 'link')):
        with pytest.raises(Forbidden, match='outside the allowed roots'):
            repos.clone(settings, admin, source, 'stolen')
        assert not (settings.repos_dir / 'stolen').exists()
    with pytest.raises(InvalidInput, match='names a path on this server'):
        repos.clone(settings, admin, f'file://otherhost{outside_repo}', 'stolen')
    assert repos.clone(settings, admin, f'file://{git_repo}', 'shop-by-url').default_branch == 'main'


def test_archive_takes_the_card_off_and_delete_removes_the_checkout(settings, make_user, repo, git_repo):
    member = make_user('member')
    worktree = repos.create_worktree(settings, member, repo.id, 'gone')
    board = boards.create_board(member, 'B')
    boards.place_card(member, board.id, worktree.id, 0, 0)
    repos.set_archived(member, worktree.id, True)
    assert boards.board_state(member, board.id)['cards'] == []
    assert repos.list_worktrees(member, repo.id) == []
    assert len(repos.list_worktrees(member, repo.id, archived=True)) == 1
    with pytest.raises(Forbidden):
        repos.delete_worktree(make_user('member', 'Someone Else'), worktree.id)
    repos.delete_worktree(member, worktree.id)
    assert not (settings.worktrees_dir / repo.slug / 'gone').exists()
    assert 'gone' in branches(git_repo)  # the branch (and its commits) stay
