"""Zone triggers: the template sandbox, rendering errors, once-per-drop firing (also under racing threads), the
picker flow, failures that leave nothing behind, and the zone's history."""
from __future__ import annotations

import pytest
from sqlmodel import select

from agor import agent_sessions, boards, db, events, repos, trigger_template, triggers
from agor.errors import Conflict, Forbidden, InvalidInput
from agor.models import AgentSession, Role, SessionTurn, Worktree, ZoneFiring

from .conftest import at_once, seed_board

IN_ZONE = (700, 100)  # the seeded zone 'Review' is at (600, 0), 500 x 400
OUTSIDE = (0, 500)
TEMPLATE = ('Review {{ worktree.name }} ({{ worktree.branch }}) for {{ user.name }} on {{ board.name }} / '
            '{{ zone.label }}')


@pytest.fixture
def team(settings, git_repo):
    return seed_board(settings, git_repo, bob=Role.member, vic=Role.viewer)


def set_trigger(team, template=TEMPLATE, behavior='always_new', runtime='shell'):
    boards.update_zone(team.owner, team.zone.id, trigger_template=template, trigger_behavior=behavior,
                       trigger_runtime=runtime)


def worktree_sessions(team) -> list[AgentSession]:
    with db.read() as session:
        return list(session.exec(select(AgentSession).where(AgentSession.worktree_id == team.worktree.id)))


def firings(team) -> list[ZoneFiring]:
    with db.read() as session:
        return list(session.exec(select(ZoneFiring).where(ZoneFiring.zone_id == team.zone.id)))


def race_drops(users, board_id: str, worktree_id: str, count: int = 8) -> list:
    """`count` threads released at once, each dropping the card at a slightly different spot in the zone."""
    return at_once(count, lambda i: triggers.drop_card(users[i % len(users)], board_id, worktree_id,
                                                       IN_ZONE[0] + i, IN_ZONE[1] + i))


# ---- the sandbox -----------------------------------------------------------------------------------------------------

def problem(source: str) -> str:
    """What the author of `source` is told (rendered against the sample worktree)."""
    with pytest.raises(trigger_template.TemplateProblem) as caught:
        trigger_template.render(source, trigger_template.SAMPLE)
    return str(caught.value)


@pytest.mark.parametrize('source', [
    "{{ ''.__class__.__mro__[1].__subclasses__() }}",
    '{{ worktree.__class__.__init__.__globals__ }}',
    '{{ worktree._agor_root }}',
    '{{ range.__globals__ }}',
    '{{ self.__init__.__globals__ }}',
    '{{ worktree.name.__class__ }}',
    "{{ worktree.update({'name': 'x'}) }}",
    "{{ '{0.__class__}'.format(worktree) }}",
])
def test_the_sandbox_refuses_attribute_escapes(source):
    assert problem(source).startswith('Not allowed in a trigger template')


@pytest.mark.parametrize('source', ["{% include '/etc/passwd' %}", "{% import '/etc/passwd' as p %}x",
                                    "{% extends '/etc/passwd' %}", "{% from 'x' import y %}x"])
def test_templates_cannot_reach_files(source):
    assert problem(source) == 'A trigger template cannot include, import or extend other templates.'


@pytest.mark.parametrize('source', ["{{ 'a' * 1000000000 }}", '{{ 9 ** 999999 }}', "{{ 'a'.ljust(1000000000) }}",
                                    '{% for i in range(10000000) %}x{% endfor %}',
                                    '{% for i in range(5000) %}{{ worktree.notes }}{% endfor %}'])
def test_templates_cannot_allocate_their_way_out(source):
    assert problem(source)


@pytest.mark.parametrize('source, message', [
    ('{{ worktree.nmae }}', 'worktree.nmae does not exist; worktree has name, branch, path'),
    ('{{ ticket.id }}', "Unknown variable 'ticket': use worktree.*, board.*, zone.*, user.*."),
    ('Fix {% if worktree.notes %}it', 'Syntax error on line 1: Unexpected end of template'),
    ('line one\n{{ worktree.name }', 'Syntax error on line 2'),
    ('{{ 1 / 0 }}', 'The template failed: ZeroDivisionError'),
    ('{{ "" }}  ', 'The template renders to an empty prompt.'),
])
def test_rendering_errors_say_what_is_wrong(source, message):
    assert problem(source).startswith(message)


def test_missing_values_render_as_empty_text():
    values = {**trigger_template.SAMPLE, 'worktree': {**trigger_template.SAMPLE['worktree'], 'pr_url': None}}
    assert trigger_template.render('PR: [{{ worktree.pr_url }}] {{ worktree.name }}', values) == 'PR: [] auth-fix'


def test_saving_a_bad_template_is_refused_and_keeps_the_old_one(team):
    set_trigger(team)
    with pytest.raises(InvalidInput, match='worktree.brnch does not exist'):
        boards.update_zone(team.owner, team.zone.id, trigger_template='{{ worktree.brnch }}')
    for bad in ({'trigger_behavior': 'sometimes'}, {'trigger_runtime': 'cobol'}, {'trigger_runtime': ['shell']}):
        with pytest.raises(InvalidInput):
            boards.update_zone(team.owner, team.zone.id, **bad)
    zone = boards.board_state(team.owner, team.board.id)['zones'][0]
    assert (zone['trigger'], zone['trigger_template'], zone['trigger_runtime']) == (True, TEMPLATE, 'shell')
    boards.update_zone(team.owner, team.zone.id, trigger_template='  ')  # emptied: only organizational again
    assert boards.board_state(team.owner, team.board.id)['zones'][0]['trigger'] is False


async def test_preview_renders_against_a_real_card_or_the_sample(team):
    preview = await triggers.preview(team.users['bob'], team.board.id, team.zone.id, TEMPLATE)
    assert preview['error'] is None and preview['sample'] == 'auth-fix'
    assert preview['text'] == 'Review auth-fix (auth-fix) for Bob on Sprint / Review'
    assert (await triggers.preview(team.owner, team.board.id, team.zone.id, '{{ worktree.path }}'))['text'] \
        == team.worktree.path
    empty = boards.create_board(team.owner, 'Empty')
    sample = await triggers.preview(team.owner, empty.id, None, '{{ worktree.name }} {{ zone.label }}x')
    assert sample['sample'] == 'sample worktree “auth-fix”' and sample['text'] == 'auth-fix Reviewx'
    assert (await triggers.preview(team.owner, empty.id, None, '{{ worktree.nmae }}'))['error'] \
        .startswith('worktree.nmae does not exist')
    with pytest.raises(Forbidden):
        await triggers.preview(team.users['vic'], team.board.id, team.zone.id, TEMPLATE)


# ---- firing ----------------------------------------------------------------------------------------------------------

def test_a_template_saved_while_a_drop_renders_is_the_one_that_fires(team, monkeypatch):
    """A drop renders its prompt before its transaction; if someone saves a new template in between, the drop sees
    the change in its transaction and renders again, so the prompt that starts the session is the zone's template."""
    set_trigger(team, template='old {{ worktree.name }}')
    render = trigger_template.render
    rendered: list[str] = []

    def render_while_alice_saves(source: str, values: dict) -> str:
        rendered.append(source)
        if source.startswith('old'):  # the drop is rendering the template it read: Alice saves a new one now
            boards.update_zone(team.owner, team.zone.id, trigger_template='new {{ worktree.name }}')
        return render(source, values)
    monkeypatch.setattr(trigger_template, 'render', render_while_alice_saves)
    fired = triggers.drop_card(team.users['bob'], team.board.id, team.worktree.id, *IN_ZONE)
    assert (fired['status'], fired['prompt']) == ('started', 'new auth-fix')
    assert rendered == ['old {{ worktree.name }}', 'new {{ worktree.name }}', 'new {{ worktree.name }}']
    assert len(firings(team)) == 1


def test_a_drop_fires_once_as_the_dropping_user_and_everyone_hears_of_it(team):
    set_trigger(team)
    bob = team.users['bob']
    heard: list[dict] = []
    unsubscribe = events.bus.subscribe(events.topic('board', team.board.id), heard.append)
    try:
        fired = triggers.drop_card(bob, team.board.id, team.worktree.id, *IN_ZONE)
    finally:
        unsubscribe()
    assert fired['status'] == 'started' and fired['by'] == 'Bob'
    [agent] = worktree_sessions(team)
    assert (agent.id, agent.created_by, agent.runtime) == (fired['session_id'], bob.id, 'shell')
    with db.read() as session:
        [turn] = session.exec(select(SessionTurn).where(SessionTurn.session_id == agent.id)).all()
    assert (turn.prompt, turn.created_by) == ('Review auth-fix (auth-fix) for Bob on Sprint / Review', bob.id)
    [toast] = [e for e in heard if e['type'] == 'zone_fired']
    assert (toast['by'], toast['worktree'], toast['zone'], toast['session_id']) == ('Bob', 'auth-fix', 'Review',
                                                                                    agent.id)
    card = next(e for e in reversed(heard) if e['type'] == 'card')['card']  # the session's chip is on the card
    assert card['zone'] == team.zone.id and [c['id'] for c in card['sessions']] == [agent.id]

    # moving within the zone, dropping again on the same spot: nothing more fires
    assert triggers.drop_card(bob, team.board.id, team.worktree.id, IN_ZONE[0] + 50, IN_ZONE[1] + 40) is None
    assert triggers.drop_card(team.owner, team.board.id, team.worktree.id, *IN_ZONE) is None
    assert len(worktree_sessions(team)) == 1 and len(firings(team)) == 1

    # out and back in is a new drop
    assert triggers.drop_card(bob, team.board.id, team.worktree.id, *OUTSIDE) is None
    again = triggers.drop_card(team.owner, team.board.id, team.worktree.id, *IN_ZONE)
    assert again['status'] == 'started' and again['by'] == 'Alice'
    assert len(worktree_sessions(team)) == 2
    assert [(h['by'], h['worktree'], h['status']) for h in triggers.history(team.users['vic'], team.zone.id)] == [
        ('Alice', 'auth-fix', 'started'), ('Bob', 'auth-fix', 'started')]


def test_a_zone_without_a_template_only_organizes(team):
    assert triggers.drop_card(team.owner, team.board.id, team.worktree.id, *IN_ZONE) is None
    assert worktree_sessions(team) == [] and firings(team) == []


def test_racing_drops_of_the_same_card_fire_once(team):
    set_trigger(team)
    results = race_drops([team.owner, team.users['bob']], team.board.id, team.worktree.id)
    assert len([r for r in results if r is not None]) == 1
    assert len(worktree_sessions(team)) == 1 and len(firings(team)) == 1
    card = boards.board_state(team.owner, team.board.id)['cards'][0]
    assert card['zone'] == team.zone.id  # every drop still moved the card (last write wins)


def test_viewers_never_fire(team):
    set_trigger(team)
    with pytest.raises(Forbidden, match='cannot move cards'):
        triggers.drop_card(team.users['vic'], team.board.id, team.worktree.id, *IN_ZONE)
    assert firings(team) == [] and boards.board_state(team.owner, team.board.id)['cards'][0]['zone'] is None


def test_a_drop_by_someone_who_may_not_start_sessions_there_fails_and_says_why(team):
    set_trigger(team)
    repos.set_level(team.owner, team.worktree.id, 'view')  # Bob may look at Alice's worktree, not start sessions
    failed = triggers.drop_card(team.users['bob'], team.board.id, team.worktree.id, *IN_ZONE)
    assert failed['status'] == 'failed', failed
    assert failed['error'] == ('On auth-fix others may: view only. To start sessions in it you need “Start their own '
                               'sessions”; Alice (its owner) or an admin can grant it.')  # word for word
    assert worktree_sessions(team) == []


def test_a_template_failing_at_fire_time_leaves_the_card_and_nothing_else(team):
    # notes are empty on this worktree (the sample has notes), so the broken branch only runs at fire time
    set_trigger(team, '{% if not worktree.notes %}{{ worktree.nope }}{% endif %}Fix {{ worktree.name }}')
    failed = triggers.drop_card(team.owner, team.board.id, team.worktree.id, *IN_ZONE)
    assert failed['status'] == 'failed' and failed['error'].startswith('worktree.nope does not exist')
    assert worktree_sessions(team) == []
    assert boards.board_state(team.owner, team.board.id)['cards'][0]['zone'] == team.zone.id
    assert triggers.history(team.owner, team.zone.id)[0]['status'] == 'failed'


def test_a_runtime_that_cannot_start_rolls_the_whole_drop_back(team):
    set_trigger(team)
    with db.transaction() as session:  # archived after the card was placed: no session may start in it
        session.get(Worktree, team.worktree.id).archived = True
    with pytest.raises(InvalidInput, match='archived'):
        triggers.drop_card(team.owner, team.board.id, team.worktree.id, *IN_ZONE)
    assert firings(team) == [] and worktree_sessions(team) == []
    assert boards.board_state(team.owner, team.board.id)['cards'][0]['zone'] is None


# ---- show_picker -----------------------------------------------------------------------------------------------------

def test_show_picker_asks_the_dropping_user_and_answers_once(team):
    set_trigger(team, behavior='show_picker')
    bob = team.users['bob']
    earlier = agent_sessions.create(bob, team.worktree.id, 'shell')
    alices = agent_sessions.create(team.owner, team.worktree.id, 'shell')  # not Bob's to prompt
    asked = triggers.drop_card(bob, team.board.id, team.worktree.id, *IN_ZONE)
    assert asked['status'] == 'picking' and asked['prompt'].startswith('Review auth-fix')
    assert [s['id'] for s in asked['sessions']] == [earlier.id] and asked['default_session'] == earlier.id
    assert triggers.waiting_picks(bob, team.board.id)[0]['id'] == asked['id']  # a reload asks again
    assert triggers.waiting_picks(team.owner, team.board.id) == []

    with pytest.raises(Forbidden):
        triggers.pick(team.owner, asked['id'])
    with pytest.raises(Forbidden, match='cannot start sessions;'):
        triggers.pick(team.users['vic'], asked['id'])  # a viewer (Bob's page after a demotion)
    with pytest.raises(InvalidInput, match='one of your sessions'):
        triggers.pick(bob, asked['id'], session_id=alices.id)
    picked = triggers.pick(bob, asked['id'], session_id=earlier.id)
    assert picked['status'] == 'started' and picked['session_id'] == earlier.id
    with db.read() as session:
        turns = session.exec(select(SessionTurn).where(SessionTurn.session_id == earlier.id)).all()
    assert [t.prompt for t in turns] == [asked['prompt']]
    with pytest.raises(Conflict):
        triggers.pick(bob, asked['id'])  # a second answer (another tab, a double click)
    assert len(worktree_sessions(team)) == 2 and triggers.waiting_picks(bob, team.board.id) == []


def test_show_picker_can_start_a_new_session_or_be_cancelled(team, instance_keys):
    set_trigger(team, behavior='show_picker')
    asked = triggers.drop_card(team.owner, team.board.id, team.worktree.id, *IN_ZONE)
    assert asked['sessions'] == [] and asked['default_session'] is None and asked['runtime'] == 'shell'
    started = triggers.pick(team.owner, asked['id'], runtime='gemini')
    [agent] = worktree_sessions(team)
    assert started['session_id'] == agent.id and agent.runtime == 'gemini'

    triggers.drop_card(team.owner, team.board.id, team.worktree.id, *OUTSIDE)
    asked = triggers.drop_card(team.owner, team.board.id, team.worktree.id, *IN_ZONE)
    triggers.cancel(team.owner, asked['id'])
    with pytest.raises(Conflict):
        triggers.pick(team.owner, asked['id'])
    assert len(worktree_sessions(team)) == 1
    assert [h['status'] for h in triggers.history(team.owner, team.zone.id)] == ['cancelled', 'started']


def test_racing_picks_start_one_session(team):
    set_trigger(team, behavior='show_picker')
    asked = triggers.drop_card(team.owner, team.board.id, team.worktree.id, *IN_ZONE)

    def answer(_: int) -> str:
        try:
            return triggers.pick(team.owner, asked['id'])['status']
        except Conflict:
            return 'conflict'
    outcomes = at_once(6, answer)
    assert sorted(outcomes) == ['conflict'] * 5 + ['started']
    assert len(worktree_sessions(team)) == 1


def test_worktree_notes_and_links_reach_templates(team):
    bob, vic = team.users['bob'], team.users['vic']
    repos.set_level(team.owner, team.worktree.id, 'all')  # Alice lets others edit her worktree
    repos.update_worktree_details(bob, team.worktree.id, notes=' Login loops ', issue_url='https://example.com/i/7',
                                  pr_url='')
    details = repos.worktree_details(bob, team.worktree.id)
    assert (details['notes'], details['issue_url'], details['pr_url']) == ('Login loops', 'https://example.com/i/7', '')
    for bad in ('javascript:alert(1)', 'ftp://example.com/x', 'https://exa mple.com'):
        with pytest.raises(InvalidInput, match='http:// or https://'):
            repos.update_worktree_details(bob, team.worktree.id, notes='', issue_url=bad, pr_url='')
    assert repos.worktree_details(bob, team.worktree.id)['notes'] == 'Login loops'  # a refused edit changes nothing
    with pytest.raises(Forbidden):
        repos.update_worktree_details(vic, team.worktree.id, notes='x', issue_url='', pr_url='')
    set_trigger(team, 'Fix: {{ worktree.notes }} ({{ worktree.issue_url }}) [{{ worktree.pr_url }}]')
    fired = triggers.drop_card(bob, team.board.id, team.worktree.id, *IN_ZONE)
    assert fired['prompt'] == 'Fix: Login loops (https://example.com/i/7) []'
