import pytest

from agor import boards, canvas, db, events, repos, triggers
from agor.errors import Forbidden, InvalidInput, NotFound
from agor.models import Board


@pytest.fixture
def team(make_user):
    return make_user('owner'), make_user('member'), make_user('viewer')


@pytest.fixture
def worktree(settings, team, git_repo):
    """auth-fix, created by the member (who therefore may put it on boards)."""
    owner, member = team[0], team[1]
    repo = repos.register_local(settings, owner, str(git_repo))
    return repos.create_worktree(settings, member, repo.id, 'auth-fix')


def test_slugs_are_unique_and_readable(team):
    member = team[1]
    assert boards.create_board(member, 'Sprint 42 — Ünïcode!').slug == 'sprint-42-unicode'
    assert boards.create_board(member, 'Sprint 42 - unicode').slug == 'sprint-42-unicode-2'
    assert boards.create_board(member, 'Sprint 42 / Unicode').slug == 'sprint-42-unicode-3'
    assert boards.create_board(member, '🚀🚀').slug == 'board'
    assert boards.create_board(member, 'deadbeefcafe').slug == 'deadbeefcafe-2'  # never mistaken for an id


def test_board_found_by_slug_full_id_and_short_id(team):
    member, viewer = team[1], team[2]
    board = boards.create_board(member, 'Platform')
    for ref in ('platform', board.id, board.id[:8], board.id.replace('-', '')[:12]):
        assert boards.get_board(viewer, ref).id == board.id
    with pytest.raises(NotFound):
        boards.get_board(viewer, 'nope')


def test_ambiguous_id_prefix_is_a_clear_error(team):
    member = team[1]
    with db.transaction() as session:
        for suffix in ('1', '2'):
            session.add(Board(id=f'abcdef12-0000-4000-8000-00000000000{suffix}', slug=f's{suffix}', name='x',
                              created_by=member.id))
    with pytest.raises(InvalidInput, match='ambiguous'):
        boards.get_board(member, 'abcdef12')


def test_rename_keeps_slug_and_viewers_cannot_edit(team):
    member, viewer = team[1], team[2]
    board = boards.create_board(member, 'Old name')
    assert boards.update_board(member, board.id, name='New name').slug == 'old-name'
    with pytest.raises(Forbidden, match='viewer'):
        boards.update_board(viewer, board.id, name='Hacked')
    with pytest.raises(Forbidden):
        boards.create_board(viewer, 'Mine')


def test_only_creator_or_admin_deletes_a_board(make_user):
    owner, alice, bob = make_user('owner'), make_user('member'), make_user('member')
    board = boards.create_board(alice, 'Alice board')
    with pytest.raises(Forbidden):
        boards.delete_board(bob, board.id)
    boards.delete_board(owner, board.id)
    with pytest.raises(NotFound):
        boards.get_board(owner, board.id)


def test_card_position_is_relative_to_the_zone_it_lands_in(team, worktree):
    member = team[1]
    board = boards.create_board(member, 'B')
    zone = boards.create_zone(member, board.id, 'Review', x=1000, y=500, w=600, h=400)
    placement = boards.place_card(member, board.id, worktree.id, 1100, 600)
    assert (placement.zone_id, placement.x, placement.y) == (zone.id, 100, 100)
    boards.update_zone(member, zone.id, x=2000, y=0)  # moving the zone moves the card with it
    card = boards.board_state(member, board.id)['cards'][0]
    assert (card['zone'], card['x'], card['y']) == (zone.id, 100, 100)
    assert triggers.drop_card(member, board.id, worktree.id, 10, 10) is None  # dragged out again; no trigger
    card = boards.board_state(member, board.id)['cards'][0]
    assert (card['zone'], card['x'], card['y']) == (None, 10, 10)


def test_the_smallest_zone_under_the_card_centre_wins(team, worktree):
    member = team[1]
    board = boards.create_board(member, 'B')
    boards.create_zone(member, board.id, 'Big', x=0, y=0, w=2000, h=2000)
    small = boards.create_zone(member, board.id, 'Small', x=100, y=100, w=400, h=300)
    placement = boards.place_card(member, board.id, worktree.id, 120, 120)
    assert placement.zone_id == small.id
    triggers.drop_card(member, board.id, worktree.id, 600, 600)
    outside = boards.board_state(member, board.id)['cards'][0]
    assert outside['zone'] != small.id and (outside['x'], outside['y']) == (600, 600)


def test_deleting_a_zone_keeps_its_cards_in_place(team, worktree):
    member = team[1]
    board = boards.create_board(member, 'B')
    zone = boards.create_zone(member, board.id, 'Z', x=300, y=200)
    boards.place_card(member, board.id, worktree.id, 350, 250)
    boards.delete_zone(member, zone.id)
    card = boards.board_state(member, board.id)['cards'][0]
    assert (card['zone'], card['x'], card['y']) == (None, 350, 250)


def test_locked_zone_cannot_move_resize_or_be_deleted(team):
    member = team[1]
    board = boards.create_board(member, 'B')
    zone = boards.create_zone(member, board.id, 'Z')
    boards.update_zone(member, zone.id, locked=True)
    with pytest.raises(Forbidden, match='locked'):
        boards.update_zone(member, zone.id, x=50)
    with pytest.raises(Forbidden, match='locked'):
        boards.delete_zone(member, zone.id)
    assert boards.update_zone(member, zone.id, label='Renamed', border_color='#112233').label == 'Renamed'
    assert boards.update_zone(member, zone.id, locked=False, x=50).x == 50


@pytest.mark.parametrize('changes, message', [
    ({'w': 10}, 'between'), ({'x': float('nan')}, 'off the canvas'), ({'x': 'left'}, 'not a number'),
    ({'border_color': 'red; background: url(x)'}, 'not a colour'), ({'label': '  '}, 'name'),
    ({'owner': 'me'}, 'Unknown zone fields'),
])
def test_bad_zone_input_is_refused_and_nothing_changes(team, changes, message):
    member = team[1]
    board = boards.create_board(member, 'B')
    zone = boards.create_zone(member, board.id, 'Keep', x=5, y=5)
    with pytest.raises(InvalidInput, match=message):
        boards.update_zone(member, zone.id, **changes)
    assert boards.board_state(member, board.id)['zones'][0] == canvas.zone_view(zone)


def test_viewer_cannot_move_cards(team, worktree):
    member, viewer = team[1], team[2]
    board = boards.create_board(member, 'B')
    boards.place_card(member, board.id, worktree.id, 0, 0)
    with pytest.raises(Forbidden, match='cannot move cards'):
        triggers.drop_card(viewer, board.id, worktree.id, 500, 500)
    assert boards.board_state(viewer, board.id)['cards'][0]['x'] == 0


def test_a_worktree_sits_on_one_board_at_a_time(team, worktree):
    member = team[1]
    first, second = boards.create_board(member, 'First'), boards.create_board(member, 'Second')
    boards.place_card(member, first.id, worktree.id, 0, 0)
    boards.place_card(member, second.id, worktree.id, 0, 0)
    assert boards.board_state(member, first.id)['cards'] == []
    assert [c['name'] for c in boards.board_state(member, second.id)['cards']] == ['auth-fix']


def test_changes_are_published_after_commit_only(team, worktree):
    member = team[1]
    board = boards.create_board(member, 'B')
    received = []
    unsubscribe = events.bus.subscribe(events.topic('board', board.id), received.append)
    try:
        boards.place_card(member, board.id, worktree.id, 0, 0)
        with pytest.raises(InvalidInput):
            triggers.drop_card(member, board.id, worktree.id, float('inf'), 0)
    finally:
        unsubscribe()
    assert [e['type'] for e in received] == ['card']
    assert received[0]['card']['name'] == 'auth-fix' and received[0]['by'] == member.name
