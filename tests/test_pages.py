"""Pages through NiceGUI's simulated user (no browser): login, role gates, board CRUD, forged canvas events."""
import asyncio

import pytest
from nicegui import ui
from nicegui.testing import User as TestUser

from agor import auth, boards, events
from agor.config import load_settings
from agor.models import Role
from components.board_canvas import BoardCanvas
from components.side_panel import SidePanel

from .conftest import PASSWORD, seed_board


def press(user: TestUser, label: str) -> None:
    """Click the button with that label (a heading with the same words is not a button)."""
    user.find(kind=ui.button, content=label).click()


async def log_in(user: TestUser, email: str, password: str = PASSWORD, *, wait: bool = True) -> None:
    await user.open('/login')
    user.find('Email').type(email)
    user.find('Password').type(password)
    press(user, 'Log in')
    if wait:
        await user.should_not_see('Welcome back', retries=50)


async def test_first_visit_creates_the_owner(user: TestUser):
    await user.open('/')
    await user.should_see('Create the owner account', retries=30)
    user.find('Your name').type('Ada Owner')
    user.find('Email').type('ada@example.com')
    user.find('Password (8+ characters)').type(PASSWORD)
    press(user, 'Create owner account')
    await user.should_see('Boards', retries=30)
    assert (await asyncio.to_thread(auth.list_users))[0].role == 'owner'
    await user.open('/setup')  # the setup page is gone once an owner exists
    await user.should_see('Log in', retries=30)


async def test_login_logout_and_wrong_password(user: TestUser):
    await user.open('/')  # startup has run: the database exists
    await asyncio.to_thread(auth.create_first_owner, 'ada@example.com', 'Ada', PASSWORD)
    await log_in(user, 'ada@example.com', 'wrong-password', wait=False)
    await user.should_see('Wrong email or password', retries=30)
    await log_in(user, 'ada@example.com')
    await user.should_see('New board', retries=30)
    await user.open('/logout')
    await user.should_see('Welcome back', retries=30)
    await user.open('/admin')
    await user.should_see('Welcome back', retries=30)  # logged out: back to login


async def test_roles_gate_pages_and_buttons(user: TestUser):
    await user.open('/')
    owner = await asyncio.to_thread(auth.create_first_owner, 'ada@example.com', 'Ada', PASSWORD)
    await asyncio.to_thread(auth.create_user, owner, 'vic@example.com', 'Vic Viewer', PASSWORD, Role.viewer)
    await asyncio.to_thread(boards.create_board, owner, 'Roadmap')
    await log_in(user, 'vic@example.com')
    await user.should_see('Roadmap', retries=30)
    await user.should_not_see('New board')
    await user.open('/admin')
    await user.should_see('You do not have access to this page', retries=30)
    await user.open('/b/roadmap')
    await user.should_see('view only', retries=30)
    await user.should_not_see('Zone')


async def test_board_create_rename_delete(user: TestUser):
    await user.open('/')
    await asyncio.to_thread(auth.create_first_owner, 'ada@example.com', 'Ada', PASSWORD)
    await log_in(user, 'ada@example.com')
    await user.should_see('New board', retries=30)
    press(user, 'New board')
    user.find('Name').type('Sprint 42')
    press(user, 'Create')
    await user.should_see(marker='board-title', retries=30)
    board = (await asyncio.to_thread(lambda: boards.list_boards(auth.list_users()[0])))[0]
    assert board['slug'] == 'sprint-42'
    await user.open('/')
    user.find(marker='rename-sprint-42').click()
    user.find('Name').clear().type('Sprint 43')
    press(user, 'Save')
    await user.should_not_see('Rename board', retries=30)
    await user.should_see('Sprint 43', retries=30)
    user.find(marker='delete-sprint-42').click()
    press(user, 'Delete')
    await user.should_see('No boards yet', retries=30)


async def test_admin_invites_and_sets_roles(user: TestUser):
    await user.open('/')
    await asyncio.to_thread(auth.create_first_owner, 'ada@example.com', 'Ada', PASSWORD)
    await log_in(user, 'ada@example.com')
    await user.should_see('New board', retries=30)
    await user.open('/admin')
    press(user, 'Create invite link')
    await user.should_see('Link (valid 7 days, shown once)', retries=30)
    link = user.find(marker='invite-link').elements.pop().value
    assert '/invite/' in link
    token = link.rsplit('/', 1)[-1]
    assert (await asyncio.to_thread(auth.accept_invite, token, 'new@example.com', 'New Person', PASSWORD)).role == 'member'


async def test_viewer_forged_card_move_is_refused(user: TestUser, git_repo):
    await user.open('/')
    seeded = await asyncio.to_thread(seed_board, load_settings(), git_repo, vic=Role.viewer)
    owner, board, worktree = seeded.owner, seeded.board, seeded.worktree
    await log_in(user, 'vic@example.com')
    await user.open(f'/b/{board.slug}')
    canvas = user.find(kind=BoardCanvas)
    canvas.trigger('card_move', {'id': worktree.id, 'x': 900, 'y': 900})
    await user.should_see('cannot move cards', retries=30)
    assert (await asyncio.to_thread(boards.board_state, owner, board.id))['cards'][0]['x'] == 0


async def test_member_move_reaches_another_viewer(create_user, git_repo):
    alice, bob = create_user(), create_user()
    await alice.open('/')
    seeded = await asyncio.to_thread(seed_board, load_settings(), git_repo, bob=Role.member)
    worktree, zone = seeded.worktree, seeded.zone
    await log_in(alice, 'alice@example.com')
    await log_in(bob, 'bob@example.com')
    await alice.open(f'/b/{seeded.board.slug}')
    await bob.open(f'/b/{seeded.board.slug}')
    alice.find(kind=BoardCanvas).trigger('card_move', {'id': worktree.id, 'x': 560, 'y': 60})
    with bob:
        bob_canvas = bob.find(kind=BoardCanvas).elements.pop()
    for _ in range(100):  # the event crosses a worker thread and the event loop
        if (bob_canvas.card(worktree.id) or {}).get('zone') == zone.id:
            break
        await asyncio.sleep(0.02)
    assert bob_canvas.card(worktree.id)['zone'] == zone.id


async def test_the_viewers_of_a_board_hold_one_copy_of_its_cards(create_user, git_repo):
    """Memory per viewer (docs/benchmarks.md): a board's second open page takes the card and zone dicts the first holds,
    a moved card is one dict for both, and a dict that differs from the board's state now is not taken."""
    alice, bob, alice_again = create_user(), create_user(), create_user()
    await alice.open('/')
    seeded = await asyncio.to_thread(seed_board, load_settings(), git_repo, bob=Role.member)
    card, zone = seeded.worktree.id, seeded.zone.id
    canvases = []
    for user, email in ((alice, 'alice@example.com'), (bob, 'bob@example.com')):
        await log_in(user, email)
        await user.open(f'/b/{seeded.board.slug}')
        with user:
            canvases.append(user.find(kind=BoardCanvas).elements.pop())
    first, second = canvases
    assert second.card(card) is first.card(card) and second.zone(zone) is first.zone(zone)
    alice.find(kind=BoardCanvas).trigger('card_move', {'id': card, 'x': 560, 'y': 60})
    for _ in range(100):  # the event crosses a worker thread and the event loop
        if (second.card(card) or {}).get('zone') == zone:
            break
        await asyncio.sleep(0.02)
    assert second.card(card)['zone'] == zone and second.card(card) is first.card(card)
    stale = {**first.card(card), 'name': 'missed a rename'}
    first.props['cards'] = second.props['cards'] = (stale,)
    await log_in(alice_again, 'alice@example.com')
    await alice_again.open(f'/b/{seeded.board.slug}')
    with alice_again:
        third = alice_again.find(kind=BoardCanvas).elements.pop()
    assert third.card(card) is not stale and third.card(card)['name'] == seeded.worktree.name


async def test_a_page_the_board_was_closed_to_hears_nothing_more_of_it(user: TestUser, git_repo):
    """The simulated browser follows the navigation away in a new page and leaves the old one open, as a browser that
    lags or ignores the navigation would: nothing of the board may reach that old page any more."""
    await user.open('/')
    seeded = await asyncio.to_thread(seed_board, load_settings(), git_repo, carol=Role.member)
    owner, board = seeded.owner, seeded.board
    await log_in(user, 'carol@example.com')
    old_page = await user.open(f'/b/{board.slug}')
    await user.should_see(marker='board-title', retries=30)
    await asyncio.to_thread(boards.set_access, owner, board.id, private=True, members=[], others_can='view')
    await user.should_see('You no longer have access to the board you had open.', retries=50)
    heard: list[dict] = []
    unsubscribe = events.bus.subscribe(events.topic('board', board.id), heard.append)  # after every page's listener
    try:
        await asyncio.to_thread(boards.create_zone, owner, board.id, 'Secret plans')
        for _ in range(100):  # the event crosses a worker thread and the event loop
            if heard:
                break
            await asyncio.sleep(0.02)
    finally:
        unsubscribe()
    assert [e['type'] for e in heard] == ['zone']
    shown = [z['label'] for c in old_page.elements.values() if isinstance(c, BoardCanvas) for z in c.props['zones']]
    assert 'Secret plans' not in shown
    assert not any(isinstance(e, (BoardCanvas, SidePanel)) for e in old_page.elements.values())


@pytest.mark.parametrize('path', ['/', '/repos', '/admin', '/b/anything'])
async def test_every_page_needs_a_login(user: TestUser, path: str):
    await user.open('/')
    await asyncio.to_thread(auth.create_first_owner, 'ada@example.com', 'Ada', PASSWORD)
    await user.open(path)
    await user.should_see('Welcome back', retries=30)


async def test_facepile_overflow_menu_lists_everyone_when_opened(user: TestUser):
    """Five faces, then "+3": its menu is filled when it opens (Quasar's before-show) and follows whoever is picked."""
    from components.facepile import Facepile
    followed: list = []
    people = tuple({'conn': f'c{i}', 'user': f'u{i}', 'name': f'Person {i}', 'initials': f'P{i}', 'color': '#0d9488',
                    'avatar': None, 'state': 'active', 'label': '', 'following': None} for i in range(8))

    @ui.page('/facepile-test')
    def facepile_page() -> None:
        Facepile('c0', 'u0', followed.append).show(people)
    await user.open('/facepile-test')
    more = user.find(marker='face-more')
    await user.should_not_see(kind=ui.menu_item)  # nothing is built for every viewer until someone opens it
    more.click()
    menu = user.find(kind=ui.menu)
    menu.trigger('beforeShow')  # what Quasar emits as the menu opens (NiceGUI's name for before-show)
    next(iter(menu.elements)).open()
    await user.should_see('Person 7 · active')
    assert len(user.find(kind=ui.menu_item).elements) == 8
    user.find(marker='face-menu-u7').click()
    assert followed == ['u7']



async def test_a_crowd_joining_recounts_the_facepile_and_keeps_its_faces(user: TestUser):
    """People joining past the fifth face show and change "+N" and the menu, not the faces (each page would rebuild
    them)."""
    from components.facepile import Facepile
    people = tuple({'conn': f'c{i}', 'user': f'u{i}', 'name': f'Person {i}', 'initials': f'P{i}', 'color': '#0d9488',
                    'avatar': None, 'state': 'active', 'label': '', 'following': None} for i in range(10))
    piles: list[Facepile] = []

    @ui.page('/facepile-crowd')
    def facepile_page() -> None:
        piles.append(Facepile('c0', 'u0', lambda _: None))
        piles[0].show(people[:5])
    await user.open('/facepile-crowd')
    faces = [e.id for e in user.find(marker='face-u1').elements]
    await user.should_not_see(marker='face-more')  # five faces, nobody more
    with user:
        piles[0].show(people[:7])
    assert user.find(marker='face-more').elements.pop().text == '+2'
    assert [e.id for e in user.find(marker='face-u1').elements] == faces
    with user:
        piles[0].show(people)
    assert user.find(marker='face-more').elements.pop().text == '+5'
    assert [e.id for e in user.find(marker='face-u1').elements] == faces
    menu = user.find(kind=ui.menu)
    menu.trigger('beforeShow')
    await user.should_see('Person 9 · active')

@pytest.fixture
def simple_mode_without_clis(monkeypatch, tmp_path):
    """Settings main.py reads when the `user` fixture starts it (so this fixture comes first)."""
    monkeypatch.setenv('AGOR_UNIX_USER_MODE', 'simple')
    monkeypatch.setenv('AGOR_AGENT_CLI_DIR', str(tmp_path / 'no-clis'))


async def test_the_settings_reach_the_admin_and_terminal_pages(simple_mode_without_clis, user: TestUser, git_repo):
    await user.open('/')
    seeded = await asyncio.to_thread(seed_board, load_settings(), git_repo, bob=Role.member)
    await log_in(user, 'alice@example.com')
    await user.open('/admin')
    await user.should_see('unix_user_mode: simple', retries=30)
    await user.should_see('npm i -g @anthropic-ai/claude-code@2.1.331', retries=50)  # not in AGOR_AGENT_CLI_DIR
    await user.open(f'/w/{seeded.worktree.id}/terminal')
    await user.should_see(marker='terminal-mode-warning', retries=30)  # an admin is told what simple mode means
    await user.open('/logout')
    await log_in(user, 'bob@example.com')
    await user.open(f'/w/{seeded.worktree.id}/terminal')
    await user.should_see(marker='terminal', retries=30)
    await user.should_not_see(marker='terminal-mode-warning')
