"""Worktree permissions (view < session < prompt < all) and private boards, decided by agor.permissions and checked
by every service that acts on a worktree or shows a board. Real git worktrees, real shell runs."""
import asyncio

import pytest

from sqlmodel import update

from agor import (agent_sessions, auth, boards, comments, db, events, notifications, permissions, repos, terminals,
                  triggers)
from agor.errors import Forbidden, InvalidInput, NotFound
from agor.events import topic
from agor.models import AgentSession, Board, Role, User, Worktree, utcnow
from agor.session_worker import SessionWorkers
from agor.terminals.access import level_lets_type, may_see, may_start

from .conftest import seed_board
from .test_terminals import Recorder, attach, run, scene, shared_dir  # noqa: F401  (fixtures: a real tmux)


@pytest.fixture
def team(settings, git_repo):
    """Alice (owner) owns auth-fix on board Sprint; Bob and Carol are members, Adam an admin, Vic a viewer."""
    return seed_board(settings, git_repo, bob=Role.member, carol=Role.member, adam=Role.admin, vic=Role.viewer)


def attempt(fn, *args, **kwargs) -> bool:
    try:
        fn(*args, **kwargs)
        return True
    except (Forbidden, NotFound):
        return False


# ---- levels ----------------------------------------------------------------------------------------------------------

LEVELS = {
    'view': set(),
    'session': {'start', 'prompt own'},
    'prompt': {'start', 'prompt own', "prompt Alice's", "stop Alice's"},
    'all': {'start', 'prompt own', "prompt Alice's", "stop Alice's", 'edit', 'take off its board',
            'move to another board', 'archive', 'delete'},
}


@pytest.mark.parametrize('level', LEVELS)
def test_what_a_teammate_may_do_at_each_level(team, level):
    alice, carol = team.owner, team.users['carol']
    alices = agent_sessions.create(alice, team.worktree.id, 'shell')
    carols = agent_sessions.create(carol, team.worktree.id, 'shell')  # at the default level, `session`
    elsewhere = boards.create_board(carol, 'Carol board')
    repos.set_level(alice, team.worktree.id, level)
    actions = {
        'start': lambda: agent_sessions.create(carol, team.worktree.id, 'shell'),
        'prompt own': lambda: agent_sessions.prompt(carol, carols.id, 'echo mine'),
        "prompt Alice's": lambda: agent_sessions.prompt(carol, alices.id, 'echo yours'),
        "stop Alice's": lambda: agent_sessions.stop(carol, alices.id),
        'edit': lambda: repos.update_worktree_details(carol, team.worktree.id, notes='n', issue_url='', pr_url=''),
        'take off its board': lambda: boards.remove_card(carol, team.board.id, team.worktree.id),
        'move to another board': lambda: boards.place_card(carol, elsewhere.id, team.worktree.id, 0, 0),
        'archive': lambda: repos.set_archived(carol, team.worktree.id, True),
        'delete': lambda: repos.delete_worktree(carol, team.worktree.id),
    }
    assert repos.worktree_details(carol, team.worktree.id)['rights']['level'] == level
    allowed = {name for name, action in actions.items() if attempt(action)}
    assert allowed == LEVELS[level]


def test_refusals_say_what_is_missing_and_who_can_grant_it(team):
    alice, carol = team.owner, team.users['carol']
    alices = agent_sessions.create(alice, team.worktree.id, 'shell', 'echo hi')
    why = ("On auth-fix others may: start their own sessions. To {} Alice's session you need “Prompt and stop "
           "others' sessions”; Alice (its owner) or an admin can grant it.")
    with pytest.raises(Forbidden) as refused:
        agent_sessions.prompt(carol, alices.id, 'echo $AGOR_USER')
    assert refused.value.message == why.format('prompt')
    with pytest.raises(Forbidden) as refused:
        agent_sessions.stop(carol, alices.id)
    assert refused.value.message == why.format('stop')
    assert agent_sessions.get(alice, alices.id)['queued'] == 1  # the refused stop dropped nothing
    assert agent_sessions.get(carol, alices.id)['rights']['prompt'] == why.format('prompt or stop')
    assert agent_sessions.get(alice, alices.id)['rights']['prompt'] is None


def test_the_owner_and_admins_have_full_access_and_viewers_only_watch(team):
    alice, bob, adam, vic = team.owner, team.users['bob'], team.users['adam'], team.users['vic']
    bobs = agent_sessions.create(bob, team.worktree.id, 'shell')
    repos.set_level(alice, team.worktree.id, 'view')
    with pytest.raises(Forbidden) as refused:
        agent_sessions.prompt(bob, bobs.id, 'echo mine')  # at `view` not even your own session
    assert refused.value.message == ('On auth-fix others may: view only. To prompt your session you need “Start '
                                     'their own sessions”; Alice (its owner) or an admin can grant it.')
    for full in (alice, adam):
        agent_sessions.prompt(full, bobs.id, f'echo {full.name}')
        agent_sessions.stop(full, bobs.id)
        repos.update_worktree_details(full, team.worktree.id, notes=full.name, issue_url='', pr_url='')
    repos.set_level(adam, team.worktree.id, 'all')
    for attempt_ in (lambda: agent_sessions.create(vic, team.worktree.id, 'shell'),
                     lambda: agent_sessions.prompt(vic, bobs.id, 'echo hi'),
                     lambda: repos.update_worktree_details(vic, team.worktree.id, notes='', issue_url='', pr_url='')):
        with pytest.raises(Forbidden, match='viewer'):
            attempt_()
    assert repos.worktree_details(vic, team.worktree.id)['rights']['level'] == 'view'


def refused_with(attempt_) -> str:
    with pytest.raises(Forbidden) as refused:
        attempt_()
    return refused.value.message


def test_every_refusal_says_which_action_and_what_it_needs_and_stores_nothing(settings, git_repo, team):
    alice, carol, vic = team.owner, team.users['carol'], team.users['vic']
    wt, board, zone = team.worktree, team.board, team.zone
    alices = agent_sessions.create(alice, wt.id, 'shell')
    carols_board = boards.create_board(carol, 'Carol board')
    by_role = {  # a viewer (and a member, for an admin's action): the role check of each service
        'create boards': lambda: boards.create_board(vic, 'Vic board'),
        'change who sees boards': lambda: boards.set_access(vic, board.id, private=True, members=[], others_can='view'),
        'edit boards': lambda: boards.update_board(vic, board.id, name='Vic'),
        'delete boards': lambda: boards.delete_board(vic, board.id),
        'create zones': lambda: boards.create_zone(vic, board.id, 'Vic zone'),
        'edit zones': lambda: boards.update_zone(vic, zone.id, label='Vic'),
        'delete zones': lambda: boards.delete_zone(vic, zone.id),
        'add cards to boards': lambda: boards.place_card(vic, board.id, wt.id, 5, 5),
        'remove cards from boards': lambda: boards.remove_card(vic, board.id, wt.id),
        'start sessions': lambda: agent_sessions.create(vic, wt.id, 'shell'),
        'prompt sessions': lambda: agent_sessions.prompt(vic, alices.id, 'echo hi'),
        'stop sessions': lambda: agent_sessions.stop(vic, alices.id),
        'edit worktrees': lambda: repos.update_worktree_details(vic, wt.id, notes='v', issue_url='', pr_url=''),
        'create worktrees': lambda: repos.create_worktree(settings, vic, wt.repo_id, 'vics'),
        'archive worktrees': lambda: repos.set_archived(vic, wt.id, True),
        'delete worktrees': lambda: repos.delete_worktree(vic, wt.id),
    }
    for action, attempt_ in by_role.items():
        assert refused_with(attempt_) == f'Your role (viewer) cannot {action}; it needs member or higher.'
    for attempt_ in (lambda: repos.register_local(settings, carol, str(git_repo), 'again'),
                     lambda: repos.clone(settings, carol, str(git_repo), 'again')):
        assert refused_with(attempt_) == 'Your role (member) cannot register repositories; it needs admin or higher.'
    assert refused_with(lambda: boards.delete_board(carol, board.id)) == (
        "Your role (member) cannot delete other people's boards; it needs admin or higher.")
    by_level = {  # Carol, a member, at the default level `session`: what needs `all`
        'put it on a board': lambda: boards.place_card(carol, carols_board.id, wt.id, 5, 5),
        'take it off the board': lambda: boards.remove_card(carol, board.id, wt.id),
        'edit its notes and links': lambda: repos.update_worktree_details(carol, wt.id, notes='c', issue_url='',
                                                                          pr_url=''),
        'archive or restore it': lambda: repos.set_archived(carol, wt.id, True),
        'delete it': lambda: repos.delete_worktree(carol, wt.id),
    }
    for action, attempt_ in by_level.items():
        assert refused_with(attempt_) == (f'On auth-fix others may: start their own sessions. To {action} you need '
                                          '“Everything (edit, archive, delete)”; Alice (its owner) or an admin can '
                                          'grant it.')
    gone = auth.set_active(alice, vic.id, False)  # a deactivated account reads nothing
    reads = {'follow sessions': lambda: agent_sessions.set_following(gone, alices.id, True),
             'read sessions': lambda: agent_sessions.get(gone, alices.id)}
    for action, attempt_ in reads.items():
        assert refused_with(attempt_) == f'Your role (viewer) cannot {action}; it needs viewer or higher.'
    for attempt_ in (lambda: agent_sessions.for_worktree(gone, wt.id),
                     lambda: agent_sessions.transcript(gone, alices.id),
                     lambda: agent_sessions.transcript_after(gone, alices.id),
                     lambda: agent_sessions.usage(gone, alices.id)):
        assert refused_with(attempt_) == 'Your role (viewer) cannot read sessions; it needs viewer or higher.'
    # nothing of it stored: the board, its zone and card, the worktree, its one session, the repositories
    assert [b['name'] for b in boards.list_boards(alice)] == ['Carol board', 'Sprint']
    state = boards.board_state(alice, board.id)
    assert [z['label'] for z in state['zones']] == ['Review']
    assert [c['id'] for c in state['cards']] == [wt.id]
    assert not boards.access(alice, board.id)['private']
    assert boards.board_state(alice, carols_board.id)['cards'] == []
    assert [s['id'] for s in agent_sessions.for_worktree(alice, wt.id)] == [alices.id]
    assert repos.worktree_details(alice, wt.id)['notes'] == ''
    assert len(repos.list_repos()) == 1
    assert [w['name'] for w in repos.list_worktrees(alice)] == ['auth-fix']


def test_a_members_own_worktree_is_entirely_theirs(settings, team):
    bob, carol = team.users['bob'], team.users['carol']
    mine = repos.create_worktree(settings, bob, team.worktree.repo_id, 'bobs')
    carols = agent_sessions.create(carol, mine.id, 'shell')
    repos.set_level(bob, mine.id, 'view')
    agent_sessions.prompt(bob, carols.id, 'echo from Bob')
    agent_sessions.stop(bob, carols.id)
    repos.update_worktree_details(bob, mine.id, notes='mine', issue_url='', pr_url='')
    assert repos.worktree_details(bob, mine.id)['rights']['level'] == 'all'
    with pytest.raises(Forbidden):
        agent_sessions.prompt(carol, carols.id, 'echo mine')


def test_only_the_owner_or_an_admin_sets_the_level(team):
    alice, carol = team.owner, team.users['carol']
    repos.set_level(alice, team.worktree.id, 'all')
    with pytest.raises(Forbidden, match='Only Alice'):
        repos.set_level(carol, team.worktree.id, 'prompt')  # `all` lets Carol edit it, not decide who may
    with pytest.raises(InvalidInput, match='view, session, prompt, all'):
        repos.set_level(alice, team.worktree.id, 'root')
    assert repos.worktree_details(carol, team.worktree.id)['rights']['others_can'] == 'all'
    assert repos.worktree_details(carol, team.worktree.id)['rights']['set_level']
    assert repos.worktree_details(alice, team.worktree.id)['rights']['set_level'] is None


def test_a_trigger_starts_a_session_only_where_the_dropping_user_may(team):
    carol = team.users['carol']
    boards.update_zone(team.owner, team.zone.id, trigger_template='Review {{ worktree.name }}',
                       trigger_runtime='shell')
    repos.set_level(team.owner, team.worktree.id, 'view')
    fired = triggers.drop_card(carol, team.board.id, team.worktree.id, 700, 100)
    assert fired['status'] == 'failed' and 'start sessions in it' in fired['error']
    assert agent_sessions.for_worktree(carol, team.worktree.id) == []


def test_new_worktrees_start_with_their_boards_level(settings, team):
    alice, carol = team.owner, team.users['carol']
    with pytest.raises(Forbidden, match='creator of this board'):
        boards.set_access(carol, team.board.id, private=False, members=[], others_can='all')
    with pytest.raises(InvalidInput):
        boards.set_access(alice, team.board.id, private=False, members=[], others_can='everything')
    boards.set_access(alice, team.board.id, private=False, members=[], others_can='prompt')
    repo_id = team.worktree.repo_id
    on_board = repos.create_worktree(settings, alice, repo_id, 'on-board', board_id=team.board.id)
    loose = repos.create_worktree(settings, alice, repo_id, 'loose')
    assert (on_board.others_can, loose.others_can) == ('prompt', 'session')
    assert boards.access(carol, team.board.id)['manage'] and boards.access(alice, team.board.id)['manage'] is None


async def test_a_teammates_prompt_is_attributed_and_runs_as_the_creator(settings, team):
    alice, carol = team.owner, team.users['carol']
    workers = SessionWorkers(settings)
    await workers.start()
    try:
        agent = agent_sessions.create(alice, team.worktree.id, 'shell', 'echo started')
        await settled(workers, agent.id)
        repos.set_level(alice, team.worktree.id, 'prompt')
        agent_sessions.prompt(carol, agent.id, 'echo "as=$AGOR_USER <$AGOR_USER_EMAIL>"')
        await settled(workers, agent.id)
    finally:
        await workers.stop_all()
    prompts = [e for e in agent_sessions.transcript(alice, agent.id) if e['kind'] == 'user']
    assert [(p['text'], p['data']['by'], p['data'].get('runs_as')) for p in prompts] == [
        ('echo started', 'Alice', None), ('echo "as=$AGOR_USER <$AGOR_USER_EMAIL>"', 'Carol', 'Alice')]
    assert prompts[1]['data']['by_id'] == carol.id
    entries = agent_sessions.transcript(alice, agent.id)
    assert 'as=Alice <alice@example.com>' in ''.join(e['text'] for e in entries if e['kind'] == 'assistant'), entries


async def settled(workers: SessionWorkers, session_id: str) -> None:
    """Wait for the session's queue to be served; the watchdog runs now and then, as the scheduler would."""
    owner = auth.list_users()[0]
    for tick in range(600):
        detail = agent_sessions.get(owner, session_id)
        if detail['status'] not in {'running', 'idle'} and not detail['queued']:
            return
        if tick % 20 == 19:
            await workers.check()
        await asyncio.sleep(0.05)
    raise AssertionError(f'the session did not settle: {detail}')


# ---- private boards --------------------------------------------------------------------------------------------------

def test_a_private_board_does_not_exist_for_people_it_does_not_list(settings, team):
    alice, bob, carol, adam = team.owner, team.users['bob'], team.users['carol'], team.users['adam']
    thread = comments.create(alice, team.board.id, 'Plan', target_type='worktree', target_id=team.worktree.id)
    agent = agent_sessions.create(alice, team.worktree.id, 'shell')
    carols_board = boards.create_board(carol, 'Open')
    carols = repos.create_worktree(settings, carol, team.worktree.repo_id, 'carols')
    boards.place_card(carol, carols_board.id, carols.id, 0, 0)
    boards.set_access(alice, team.board.id, private=True, members=[bob.id], others_can='session')
    for insider in (alice, bob, adam):
        assert [b['name'] for b in boards.list_boards(insider)] == ['Open', 'Sprint']
        assert boards.get_board(insider, 'sprint').id == team.board.id
    assert [b['name'] for b in boards.list_boards(carol)] == ['Open']
    nowhere = str(pytest.raises(NotFound, boards.get_board, carol, 'nothing-here').value)
    assert str(pytest.raises(NotFound, boards.get_board, carol, 'sprint').value) == nowhere.replace('nothing-here',
                                                                                                   'sprint')
    short = team.board.id[:8]
    with pytest.raises(NotFound, match=f"No board '{short}'"):
        boards.get_board(carol, short)
    twin = boards.create_board(alice, 'Twin')  # an open board whose id starts like the private one's
    with db.transaction() as session:
        session.exec(update(Board).where(Board.id == twin.id).values(id=short + twin.id[8:]))
    assert boards.get_board(carol, short).name == 'Twin'  # the private board neither shows nor makes it ambiguous
    with pytest.raises(InvalidInput, match='ambiguous'):
        boards.get_board(bob, short)  # Bob sees both
    outsider_calls = [
        lambda: boards.board_state(carol, team.board.id),
        lambda: boards.create_zone(carol, team.board.id, 'Mine'),
        lambda: boards.update_zone(carol, team.zone.id, label='Mine'),
        lambda: boards.delete_zone(carol, team.zone.id),
        lambda: boards.update_board(carol, team.board.id, name='Mine'),
        lambda: boards.access(carol, team.board.id),
        lambda: triggers.drop_card(carol, team.board.id, team.worktree.id, 0, 0),
        lambda: triggers.history(carol, team.zone.id),
        lambda: asyncio.run(triggers.preview(carol, team.board.id, None, '{{ board.name }}')),
        lambda: comments.threads(carol, team.board.id),
        lambda: comments.create(carol, team.board.id, 'hello'),
        lambda: comments.reply(carol, thread.id, 'hello'),
        lambda: comments.toggle_reaction(carol, thread.id, '👍'),
        lambda: comments.locate(carol, thread.id),
        lambda: agent_sessions.get(carol, agent.id),
        lambda: agent_sessions.transcript(carol, agent.id),
        lambda: agent_sessions.transcript_after(carol, agent.id),
        lambda: agent_sessions.usage(carol, agent.id),
        lambda: agent_sessions.for_worktree(carol, team.worktree.id),
        lambda: agent_sessions.board_attention(carol, team.board.id),
        lambda: agent_sessions.set_following(carol, agent.id, True),
        lambda: agent_sessions.create(carol, team.worktree.id, 'shell'),
        lambda: repos.worktree_details(carol, team.worktree.id),
        lambda: terminals.terminal_worktree(carol, team.worktree.id),
        lambda: agent_sessions.acknowledge(carol, agent.id),
        lambda: boards.delete_board(carol, team.board.id),
        lambda: boards.place_card(carol, team.board.id, carols.id, 0, 0),
        lambda: boards.remove_card(carol, team.board.id, team.worktree.id),
    ]
    for call in outsider_calls:
        with pytest.raises(NotFound):
            call()
    assert [w['name'] for w in repos.list_worktrees(carol)] == ['carols']
    leak = asyncio.run(triggers.preview(carol, carols_board.id, team.zone.id, '[{{ zone.label }}]'))  # another board's
    assert leak['text'] == '[]'
    assert [w['name'] for w in repos.list_worktrees(bob)] == ['auth-fix', 'carols']
    assert comments.threads(bob, team.board.id)[0]['id'] == thread.id


def test_notifications_of_a_private_board_reach_only_its_people(team):
    alice, bob, carol = team.owner, team.users['bob'], team.users['carol']
    boards.set_access(alice, team.board.id, private=True, members=[bob.id], others_can='session')
    told = []
    events.bus.subscribe(topic('user', carol.id), told.append)
    comments.create(alice, team.board.id, 'Look @Bob and @Carol')
    assert told == []  # not even announced to her open pages
    assert [n['title'] for n in notifications.inbox(bob)] == ['Alice mentioned you on Sprint']
    assert notifications.inbox(carol) == [] and notifications.unread_count(carol) == 0
    boards.set_access(alice, team.board.id, private=True, members=[], others_can='session')
    assert notifications.inbox(bob) == [] and notifications.unread_count(bob) == 0  # gone with the access


async def test_followers_who_lost_the_board_hear_nothing_of_its_sessions(settings, team):
    alice, carol = team.owner, team.users['carol']
    heard = {alice.id: [], carol.id: []}
    for user_id, got in heard.items():
        events.bus.subscribe(topic('user', user_id), got.append)
    agent = agent_sessions.create(alice, team.worktree.id, 'shell')
    agent_sessions.set_following(carol, agent.id, True)
    boards.set_access(alice, team.board.id, private=True, members=[], others_can='session')
    workers = SessionWorkers(settings)
    await workers.start()
    try:
        agent_sessions.prompt(alice, agent.id, 'echo secret')
        await settled(workers, agent.id)
    finally:
        await workers.stop_all()
    assert [e['type'] for e in heard[alice.id]].count('run_finished') == 1
    assert heard[carol.id] == []


def test_only_the_board_creator_or_an_admin_changes_its_members(team):
    bob, adam = team.users['bob'], team.users['adam']
    board = boards.create_board(bob, 'Bob private')
    with pytest.raises(Forbidden) as refused:
        boards.set_access(team.users['carol'], board.id, private=True, members=[], others_can='view')
    assert refused.value.message == ('Only the creator of this board or an admin can change who sees it and its '
                                     'default level.')
    boards.set_access(adam, board.id, private=True, members=[], others_can='view')
    assert [b['name'] for b in boards.list_boards(bob)] == ['Bob private', 'Sprint']
    with pytest.raises(InvalidInput, match='no longer have an account'):
        boards.set_access(bob, board.id, private=True, members=['no-such-user'], others_can='view')
    assert boards.access(bob, board.id)['members'] == []
    shared = boards.create_board(bob, 'Bob and Carol')
    boards.set_access(bob, shared.id, private=True, members=[team.users['carol'].id], others_can='view')
    assert boards.access(bob, shared.id)['members'] == [team.users['carol'].id]
    assert boards.access(bob, board.id)['members'] == []  # each board's own list


# ---- terminals -------------------------------------------------------------------------------------------------------

def test_a_terminal_is_read_only_for_a_teammate_at_view(team):
    alice, carol = team.owner, team.users['carol']
    assert level_lets_type(carol, team.worktree.id) and level_lets_type(alice, team.worktree.id)
    repos.set_level(alice, team.worktree.id, 'view')
    assert not level_lets_type(carol, team.worktree.id) and level_lets_type(alice, team.worktree.id)
    assert terminals.terminal_worktree(carol, team.worktree.id).id == team.worktree.id  # she may still watch


def test_a_terminal_of_a_worktree_deleted_meanwhile_is_refused_and_seen_by_nobody(team):
    """Deleted between the terminal's open check and its start (another tab, the repos page): the member opening it
    reads why, and the rights hook (run when a board's access changes) finds nobody may see or type in it."""
    alice = team.owner
    worktree = team.worktree
    repos.delete_worktree(alice, worktree.id)
    with pytest.raises(NotFound) as refused:
        may_start(alice, worktree)
    assert refused.value.message == 'That worktree no longer exists.'
    assert not may_see(alice, worktree.id) and not level_lets_type(alice, worktree.id)


async def until(condition, timeout: float = 5) -> None:
    for _ in range(int(timeout / 0.02)):
        if condition():
            return
        await asyncio.sleep(0.02)
    raise AssertionError('condition not reached')


async def test_an_open_terminal_follows_the_level_and_the_board_of_its_worktree(scene):
    s = scene
    board = boards.create_board(s.alice, 'Ops')
    boards.place_card(s.alice, board.id, s.worktree.id, 0, 0)
    repos.set_level(s.alice, s.worktree.id, 'view')
    with pytest.raises(Forbidden, match='start its terminal'):
        await s.service.open(s.bob, s.worktree.id, 80, 24, Recorder())
    alice = await attach(s.service, s.alice, s.worktree.id)
    bob = await attach(s.service, s.bob, s.worktree.id)
    assert bob.attachment.writable is False and bob.attachment.write('echo typed\r') is False
    repos.set_level(s.alice, s.worktree.id, 'session')  # Bob may type from now on: his read-only view is renewed
    await until(lambda: bob.endings == ['You may type in this terminal now: open it again.'])
    bob = await attach(s.service, s.bob, s.worktree.id)
    assert await run(bob, 'echo hi', 'MARK1') == 'hi'
    repos.set_level(s.alice, s.worktree.id, 'view')  # and from now on he only watches, at once
    await until(lambda: not bob.attachment.writable)
    assert bob.attachment.write('echo typed\r') is False
    boards.set_access(s.alice, board.id, private=True, members=[], others_can='session')
    await until(lambda: bob.endings == ['You no longer have access to this worktree.'])
    assert alice.endings == [] and await run(alice, 'echo still', 'MARK2') == 'still'


def test_a_request_for_approval_pulses_only_for_those_who_may_answer_it(team):
    """A session waiting for an approval needs someone who may prompt it; any other reason (a long run that ended)
    needs every viewer of the board."""
    alice, bob, adam, vic = team.owner, team.users['bob'], team.users['adam'], team.users['vic']
    agent = agent_sessions.create(alice, team.worktree.id, 'shell')

    def needs(status: str) -> None:  # as the run records it
        with db.transaction() as session:
            session.exec(update(AgentSession).where(AgentSession.id == agent.id)
                         .values(status=status, attention_since=utcnow()))

    def pulsing() -> set[str]:
        return {user.name for user in (alice, bob, adam, vic)
                if agent_sessions.board_attention(user, team.board.id)['cards'] == [team.worktree.id]}
    repos.set_level(alice, team.worktree.id, 'session')
    needs('awaiting_permission')
    assert pulsing() == {alice.name, adam.name}  # its creator and an admin; not Bob at `session`, not a viewer
    repos.set_level(alice, team.worktree.id, 'prompt')
    assert pulsing() == {alice.name, adam.name, bob.name}
    needs('completed')
    assert pulsing() == {alice.name, adam.name, bob.name, vic.name}


# ---- the rules themselves (agor.permissions), as every service and page reads them -----------------------------------

def rights(user, worktree_id: str) -> dict:
    with db.read() as session:
        return permissions.worktree_rights(session, user, session.get(Worktree, worktree_id))


def test_what_each_person_may_do_with_a_worktree_and_why_not(team):
    """The rights the card dialog and the API show: exactly, for the owner, an admin, a member at each level and a
    viewer."""
    alice, bob, adam, vic = team.owner, team.users['bob'], team.users['adam'], team.users['vic']
    worktree = team.worktree.id
    granted = 'Alice (its owner) or an admin can grant it.'
    no_level = 'Only Alice (its owner) or an admin sets what others may do.'
    full = {'start': None, 'edit': None, 'owner': 'Alice'}
    repos.set_level(alice, worktree, 'session')
    assert rights(alice, worktree) == {**full, 'level': 'all', 'others_can': 'session', 'is_owner': True,
                                       'set_level': None}
    assert rights(adam, worktree) == {**full, 'level': 'all', 'others_can': 'session', 'is_owner': False,
                                      'set_level': None}
    assert rights(bob, worktree) == {
        'level': 'session', 'others_can': 'session', 'owner': 'Alice', 'is_owner': False, 'start': None,
        'edit': 'On auth-fix others may: start their own sessions. To edit, move or archive it you need '
                f'“Everything (edit, archive, delete)”; {granted}', 'set_level': no_level}
    repos.set_level(alice, worktree, 'view')
    assert rights(bob, worktree)['start'] == ('On auth-fix others may: view only. To start sessions you need “Start '
                                              f'their own sessions”; {granted}')
    repos.set_level(alice, worktree, 'all')
    at_all = rights(bob, worktree)
    assert (at_all['start'], at_all['edit']) == (None, None)
    assert rights(vic, worktree) == {
        'level': 'view', 'others_can': 'all', 'owner': 'Alice', 'is_owner': False,
        'start': 'Your role (viewer) only views worktrees; to start sessions you need member or higher.',
        'edit': 'Your role (viewer) only views worktrees; to edit, move or archive it you need member or higher.',
        'set_level': no_level}


def test_membership_of_one_private_board_opens_no_other(team):
    alice, bob, carol = team.owner, team.users['bob'], team.users['carol']
    other = boards.create_board(alice, 'Other')
    boards.set_access(alice, team.board.id, private=True, members=[bob.id], others_can='session')
    boards.set_access(alice, other.id, private=True, members=[carol.id], others_can='session')
    with db.read() as session:
        assert [permissions.can_view_board(session, who, session.get(Board, team.board.id))
                for who in (bob, carol)] == [True, False]
        assert [permissions.can_view_board(session, who, session.get(Board, other.id))
                for who in (bob, carol)] == [False, True]


def test_a_deactivated_account_sees_no_board_and_no_worktree(team):
    bob = team.users['bob']
    auth.set_active(team.owner, bob.id, False)
    with db.read() as session:
        stale = session.get(User, bob.id)  # the account as it is now
        board = session.get(Board, team.board.id)
        assert permissions.board_visible(stale, board, True) is False
        assert permissions.worktree_level(session, stale, session.get(Worktree, team.worktree.id)) is None


def test_what_is_not_a_board_id_or_not_a_visible_worktree_is_not_found_and_says_so(team):
    carol = team.users['carol']
    with db.read() as session:
        for board_id in ('', None, 7, ['a', 'b'], {'id': team.board.id}, 'no-such-board'):
            with pytest.raises(NotFound) as refused:
                permissions.visible_board(session, team.owner, board_id)
            assert refused.value.message == 'This board no longer exists.'
    boards.set_access(team.owner, team.board.id, private=True, members=[], others_can='all')
    with db.read() as session, pytest.raises(NotFound) as refused:
        permissions.require_worktree(session, carol, session.get(Worktree, team.worktree.id), permissions.Level.view,
                                     'see it')
    assert refused.value.message == 'That worktree no longer exists.'


def test_starting_a_session_below_the_level_says_what_it_needs(team):
    alice, bob = team.owner, team.users['bob']
    repos.set_level(alice, team.worktree.id, 'view')
    with pytest.raises(Forbidden) as refused:
        agent_sessions.create(bob, team.worktree.id, 'shell', 'echo hi')
    assert refused.value.message == ('On auth-fix others may: view only. To start sessions in it you need “Start '
                                     'their own sessions”; Alice (its owner) or an admin can grant it.')
