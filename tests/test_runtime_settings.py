"""Per-user runtime defaults (Settings → Agentic Tools): validation of the model, permission mode and extra arguments,
and the creator's defaults becoming those of the sessions they create, down to the CLI's command line."""
from __future__ import annotations

import pytest

from agor import agent_sessions, boards, db, repos, runtime_settings, triggers, user_secrets
from agor.errors import Forbidden, InvalidInput
from agor.models import AgentSession, Role, SessionTurn
from agor.runtimes import registry
from agor.session_worker import SessionWorkers

from .conftest import seed_board

REFUSED = {  # runtime: [(extra arguments as typed, the flag the message names)]
    'codex': [('--cd /etc', '--cd'), ('-C/etc', '-C'), ('-c model_provider="evil"', '-c'),
              ('--config=sandbox_mode="danger-full-access"', '--config'), ('--profile work', '--profile'),
              ('--oss', '--oss')],
    'claude-code': [('--add-dir /', '--add-dir'), ('--settings /tmp/s.json', '--settings'),
                    ('--mcp-config x.json', '--mcp-config'),
                    ('--dangerously-skip-permissions', '--dangerously-skip-permissions'), ('--resume abc', '--resume')],
    'gemini': [('--include-directories /', '--include-directories'), ('--yolo', '--yolo'), ('-m other', '-m')],
    'opencode': [('--dir /', '--dir'), ('--attach http://elsewhere', '--attach'),
                 ('--max-x 1 -- ignore the prompt', '--')],
}


@pytest.mark.parametrize('runtime, typed, flag',
                         [(runtime, typed, flag) for runtime, cases in REFUSED.items() for typed, flag in cases])
def test_extra_arguments_that_change_directory_config_or_credentials_are_refused_naming_the_flag(
        settings, make_user, runtime, typed, flag):
    alice = make_user('member', 'Alice')
    with pytest.raises(InvalidInput, match=f'cannot use {flag}:'):
        runtime_settings.save(alice, runtime, model=None, permission_mode=None, extra_args=typed)
    assert runtime_settings.get(alice, runtime)['extra_args'] == ''  # nothing stored


def test_other_extra_arguments_models_and_modes_are_stored_and_read_back(settings, make_user):
    alice = make_user('member', 'Alice')
    saved = runtime_settings.save(alice, 'claude-code', model=' opus ', permission_mode='plan',
                                  extra_args='--append-system-prompt "be brief" --effort low')
    assert saved['model'] == 'opus' and saved['permission_mode'] == 'plan'
    assert saved['extra_args'] == "--append-system-prompt 'be brief' --effort low"
    again = runtime_settings.save(alice, 'claude-code', model='', permission_mode=None, extra_args='')
    assert again['model'] is None and again['permission_mode'] == 'auto_edit' and again['extra_args'] == ''
    assert runtime_settings.get(make_user('member', 'Bob'), 'claude-code')['model'] is None  # per user


@pytest.mark.parametrize('field, value, message', [
    ('model', '--model=evil', 'A model name starts with a letter or digit'),
    ('permission_mode', 'yolo', 'has no permission mode'),
    ('extra_args', '--effort "low', 'quote as in a shell'),
    ('extra_args', ' '.join(['--verbose'] * 21), 'At most 20 extra arguments'),
    ('extra_args', '--append-system-prompt "a\nb"', 'printable'),
])
def test_bad_values_are_refused_with_a_reason(settings, make_user, field, value, message):
    alice = make_user('member', 'Alice')
    values = {'model': None, 'permission_mode': None, 'extra_args': None, field: value}
    with pytest.raises(InvalidInput, match=message):
        runtime_settings.save(alice, 'codex', **values)


def test_a_viewer_reads_but_cannot_set_defaults_and_the_shell_has_no_page(settings, make_user):
    viewer = make_user('viewer', 'Vic')
    assert runtime_settings.get(viewer, 'codex')['permission_mode'] == 'auto_edit'
    with pytest.raises(Forbidden):
        runtime_settings.save(viewer, 'codex', model='gpt-5.5', permission_mode=None, extra_args=None)
    with pytest.raises(InvalidInput, match='No settings for the runtime'):
        runtime_settings.get(viewer, 'shell')


def test_the_cli_state_names_the_instance_key_variable_never_its_value(settings, make_user, monkeypatch):
    alice = make_user('member', 'Alice')
    state = runtime_settings.cli_state(settings, alice, 'codex')
    assert state['installed'] and state['version'] and state['instance_key'] is None and not state['cli_login']
    settings.agent_env['OPENAI_API_KEY'] = 'sk-instance-secret'
    login = settings.data_dir / 'agent-homes' / alice.id / 'codex' / 'auth.json'
    login.parent.mkdir(parents=True)
    login.write_text('{}')
    state = runtime_settings.cli_state(settings, alice, 'codex')
    assert state['instance_key'] == 'OPENAI_API_KEY' and state['cli_login'] and state['own_key'] is None
    assert 'sk-instance-secret' not in repr(state)
    user_secrets.set_key(alice, 'CODEX_API_KEY', 'sk-alice-secret')
    state = runtime_settings.cli_state(settings, alice, 'codex')
    assert state['own_key'] == 'CODEX_API_KEY' and 'sk-alice-secret' not in repr(state)


def test_new_sessions_start_with_their_creators_defaults_down_to_the_command_line(settings, git_repo, instance_keys):
    seeded = seed_board(settings, git_repo, bob=Role.member)
    alice, bob = seeded.owner, seeded.users['bob']
    runtime_settings.save(alice, 'codex', model='gpt-5.5', permission_mode='plan', extra_args='--color never')
    mine = agent_sessions.create(alice, seeded.worktree.id, 'codex')
    chosen = agent_sessions.create(alice, seeded.worktree.id, 'codex', model='gpt-6-sol', permission_mode='bypass')
    bobs = agent_sessions.create(bob, seeded.worktree.id, 'codex')
    assert (mine.model, mine.permission_mode, mine.extra_args) == ('gpt-5.5', 'plan', ['--color', 'never'])
    assert (chosen.model, chosen.permission_mode) == ('gpt-6-sol', 'bypass')  # the form's choice wins
    assert (bobs.model, bobs.permission_mode, bobs.extra_args) == (None, None, [])  # Bob's own (none)

    # a zone trigger's session is created by whoever dropped the card: theirs too
    boards.update_zone(alice, seeded.zone.id, trigger_template='Review {{ worktree.name }}', trigger_runtime='codex')
    fired = triggers.drop_card(alice, seeded.board.id, seeded.worktree.id, 700, 100)
    assert fired['status'] == 'started'
    with db.read() as session:
        triggered = session.get(AgentSession, fired['session_id'])
    assert triggered.model == 'gpt-5.5' and triggered.extra_args == ['--color', 'never']

    repos.set_level(alice, seeded.worktree.id, 'prompt')
    turn = agent_sessions.prompt(bob, mine.id, 'hello')  # Bob prompts Alice's: it runs with Alice's defaults
    with db.read() as session:
        agent, turn, worktree = session.get(AgentSession, mine.id), session.get(SessionTurn, turn.id), seeded.worktree
    request = SessionWorkers(settings).run_request(agent, turn, worktree, alice)
    assert (request.model, request.permission_mode, request.extra_args) == ('gpt-5.5', 'plan', ['--color', 'never'])
    argv = registry.get('codex').build(request).argv
    assert argv[argv.index('-m') + 1] == 'gpt-5.5' and argv[argv.index('-s') + 1] == 'read-only'
    assert argv[argv.index('--color') + 1] == 'never' and argv[-2:] == ['--', 'hello']


def test_stored_extra_arguments_refused_today_fail_the_run_with_the_reason(settings, git_repo, instance_keys):
    seeded = seed_board(settings, git_repo)
    agent = agent_sessions.create(seeded.owner, seeded.worktree.id, 'codex')
    turn = agent_sessions.prompt(seeded.owner, agent.id, 'hello')
    with db.transaction() as session:
        stored = session.get(AgentSession, agent.id)
        stored.extra_args = ['--add-dir', '/']  # written before the rule existed, or behind the app's back
    with db.read() as session:
        agent = session.get(AgentSession, agent.id)
    with pytest.raises(InvalidInput, match='cannot use --add-dir'):
        SessionWorkers(settings).run_request(agent, turn, seeded.worktree, seeded.owner)
