"""Sessions with the real `shell` runtime: queueing, stop, status machine, attention per viewer, the watchdog and
restart recovery. (The four agent CLIs are exercised for real in test_runtime_clis.py and the browser test.)"""
import asyncio
import signal
import subprocess
from datetime import timedelta
from pathlib import Path

import pytest

from agor import agent_sessions, db, events, repos, run_records, session_worker
from agor.models import AgentSession, Role, SessionTurn, utcnow
from agor.events import topic
from agor.runtimes import cli_process
from agor.runtimes.base import TranscriptEvent
from agor.runtimes.cli_process import process_group_alive
from agor.session_worker import RESTART_REASON, VANISHED_REASON, SessionWorkers

from .conftest import at_once, seed_board
from .servers import INITDB, postgres_server


@pytest.fixture
async def scene(settings, git_repo):
    seeded = seed_board(settings, git_repo, bob=Role.member, dan=Role.viewer)
    workers = SessionWorkers(settings)
    await workers.start()
    yield seeded, workers
    await workers.stop_all()


async def settle(session_id: str, *statuses: str, timeout: float = 20) -> dict:
    for _ in range(int(timeout / 0.05)):
        detail = agent_sessions.get(_any_user(), session_id)
        if detail['status'] in statuses and not detail['queued']:
            return detail
        await asyncio.sleep(0.05)
    raise AssertionError(f'session stayed {detail["status"]}')


async def wait_for(condition, timeout: float = 20):
    for _ in range(int(timeout / 0.05)):
        value = condition()
        if value:
            return value
        await asyncio.sleep(0.05)
    raise AssertionError('condition not met in time')


def _any_user():
    from agor import auth
    return auth.list_users()[0]


def texts(user, session_id, kind=None):
    return [e['text'] for e in agent_sessions.transcript(user, session_id) if kind is None or e['kind'] == kind]


async def test_shell_session_runs_in_the_worktree_and_streams_its_output(scene):
    seeded, _ = scene
    alice = seeded.owner
    agent = agent_sessions.create(alice, seeded.worktree.id, 'shell', 'pwd; echo "hi $AGOR_USER"')
    detail = await settle(agent.id, 'completed')
    assert detail['title'] == 'pwd; echo "hi $AGOR_USER"' and detail['creator'] == 'Alice'
    assert texts(alice, agent.id, 'user') == ['pwd; echo "hi $AGOR_USER"']
    output = '\n'.join(texts(alice, agent.id, 'assistant'))
    assert seeded.worktree.path in output and 'hi Alice' in output


async def test_prompts_sent_while_running_are_queued_and_run_in_order(scene):
    seeded, _ = scene
    bob = seeded.users['bob']
    agent = agent_sessions.create(bob, seeded.worktree.id, 'shell', 'sleep 0.5; echo first')
    agent_sessions.prompt(bob, agent.id, 'echo second')
    agent_sessions.prompt(seeded.owner, agent.id, 'echo third')
    assert agent_sessions.get(bob, agent.id)['queued'] >= 2
    await settle(agent.id, 'completed')
    assert [t.strip() for t in texts(bob, agent.id, 'assistant') if t.strip()] == ['first', 'second', 'third']


async def test_a_prompt_queued_while_the_worker_finds_the_queue_empty_still_runs(scene, monkeypatch):
    """The lost wake-up: the worker's last claim sees an empty queue, a prompt is queued (and its event delivered)
    before the worker has left; without the watchdog it must still run."""
    seeded, _ = scene
    alice = seeded.owner
    real_claim, injected = run_records.claim_next_turn, []

    def claim_then_queue(session_id: str):
        claimed = real_claim(session_id)
        if claimed is None and not injected:  # the event of this prompt reaches the loop before the claim's result
            injected.append(agent_sessions.prompt(alice, session_id, 'echo second'))
        return claimed

    monkeypatch.setattr(run_records, 'claim_next_turn', claim_then_queue)
    agent = agent_sessions.create(alice, seeded.worktree.id, 'shell', 'echo first')
    await wait_for(lambda: injected)
    await settle(agent.id, 'completed', timeout=10)
    assert [t.strip() for t in texts(alice, agent.id, 'assistant')] == ['first', 'second']


@pytest.fixture(params=['sqlite', pytest.param('postgres', marks=[
    pytest.mark.postgres, pytest.mark.skipif(not INITDB, reason='PostgreSQL is not installed')])])
def any_database(request, monkeypatch):
    """The test runs on SQLite and on a private PostgreSQL (`settings` reads DATABASE_URL)."""
    if request.param == 'sqlite':
        yield
        return
    with postgres_server() as url:
        monkeypatch.setenv('DATABASE_URL', url)
        yield


def test_a_session_read_while_its_next_turn_is_claimed_shows_one_moment(any_database, settings, git_repo,
                                                                        monkeypatch):
    """Status and queue come from one state of the database: a read that overlapped the claim of a queued prompt
    once showed the session `idle` (before) with nothing queued (after) while the turn ran, and whoever waited for
    the session to settle stopped waiting."""
    seeded = seed_board(settings, git_repo)
    alice = seeded.owner
    agent = agent_sessions.create(alice, seeded.worktree.id, 'shell', 'echo first')  # queued; no worker serves it
    real_count, claimed = agent_sessions.queued_count, []

    def claim_midway(session, session_id):  # the worker commits its claim while the read is under way
        if not claimed:  # once (the claim publishes the session's summary, which counts again)
            claimed.append(session_id)
            claimed.append(run_records.claim_next_turn(session_id))
        return real_count(session, session_id)

    monkeypatch.setattr(agent_sessions, 'queued_count', claim_midway)
    detail = agent_sessions.get(alice, agent.id)
    assert claimed[1] is not None and (detail['status'], detail['queued']) == ('idle', 1)  # all of it from before
    detail = agent_sessions.get(alice, agent.id)
    assert (detail['status'], detail['queued']) == ('running', 0)


async def test_stop_ends_the_process_group_drops_the_queue_and_says_who_stopped_it(scene):
    seeded, _ = scene
    bob = seeded.users['bob']
    started = Path(seeded.worktree.path) / 'started'  # stopped once the command runs (not in the login profile)
    script = f'touch {started}; sleep 30 & sleep 30; echo never'
    repos.set_level(seeded.owner, seeded.worktree.id, 'prompt')  # Bob may prompt and stop Alice's session
    agent = agent_sessions.create(seeded.owner, seeded.worktree.id, 'shell', script)
    agent_sessions.prompt(bob, agent.id, 'echo queued')
    await wait_for(started.exists)
    pid = _pid(agent.id)
    assert agent_sessions.stop(bob, agent.id) is True
    detail = await settle(agent.id, 'stopped')
    assert detail['queued'] == 0 and 'never' not in '\n'.join(texts(bob, agent.id, 'assistant'))
    assert detail['error'] == 'Stopped by Bob.' and texts(bob, agent.id, 'system') == ['Stopped by Bob.']
    await wait_for(lambda: not process_group_alive(pid))  # the background sleep went with its group
    assert agent_sessions.stop(bob, agent.id) is False  # nothing left to stop


async def test_output_is_written_in_batches_in_order_and_viewers_get_only_the_new_text(scene, monkeypatch):
    seeded, _ = scene
    alice = seeded.owner
    writes = []
    record_events = run_records.record_events
    monkeypatch.setattr(run_records, 'record_events',
                        lambda *args: (writes.append(len(args[2])), record_events(*args)))
    script = 'for i in $(seq 0 19); do seq $((i * 1000 + 1)) $((i * 1000 + 1000)); sleep 0.05; done'  # for > 1 s
    agent = agent_sessions.create(alice, seeded.worktree.id, 'shell', script)
    heard = []
    unsubscribe = events.bus.subscribe(topic('session', agent.id), heard.append)
    await settle(agent.id, 'completed')
    unsubscribe()
    expected = ''.join(f'{i}\n' for i in range(1, 20001))  # 109 KB: it continues in a second entry
    assert ''.join(texts(alice, agent.id, 'assistant')) == expected  # in order, the last line too
    assert len(writes) <= 40  # 20,000 output lines, a few transactions

    shown: dict[int, str] = {}  # what a viewer that was there from the start builds from the events alone
    for event in heard:
        if event['type'] == 'entry' and event['entry']['kind'] == 'assistant':
            shown[event['entry']['id']] = event['entry']['text']
        elif event['type'] == 'append':
            assert event['at'] == len(shown[event['entry_id']])  # no gap, no overlap
            shown[event['entry_id']] += event['text']
    assert ''.join(shown.values()) == expected
    sent = [e['text'] for e in heard if e['type'] == 'append'] + [e['entry']['text'] for e in heard
                                                                  if e['type'] == 'entry']
    assert len(sent) > 3 and sum(len(text) for text in sent) == len(expected) + len(script)  # only new text travels
    first, second = [e for e in agent_sessions.transcript(alice, agent.id) if e['kind'] == 'assistant']
    assert run_records.ENTRY_TEXT_LIMIT <= len(first['text']) < run_records.ENTRY_TEXT_LIMIT + 10
    assert second['data'] == {'continued': True}


async def test_a_flood_reaches_viewers_in_bounded_batches(scene, monkeypatch):
    """Backpressure: a batch that holds BATCH_CHARS stops the reading until it is written, so a flood that is read
    all at once still reaches viewers in pieces of about BATCH_CHARS (one send to them never carries megabytes), and
    none of it is lost."""
    seeded, _ = scene
    alice = seeded.owner
    monkeypatch.setattr(session_worker, 'BATCH_CHARS', 2000)
    monkeypatch.setattr(session_worker, 'BATCH_SECONDS', 0.3)  # the whole output is read within one pause
    # after the CLI exited, output held back by the batches is still read to its end, however long each batch waits
    monkeypatch.setattr(cli_process, 'DRAIN_SECONDS', 0.1)
    agent = agent_sessions.create(alice, seeded.worktree.id, 'shell', 'seq 1 5000')
    heard = []
    unsubscribe = events.bus.subscribe(topic('session', agent.id), heard.append)
    await settle(agent.id, 'completed', timeout=60)
    unsubscribe()
    sent = [e['text'] for e in heard if e['type'] == 'append'] + [e['entry']['text'] for e in heard
                                                                  if e['type'] == 'entry' and e['entry']['text']]
    assert ''.join(texts(alice, agent.id, 'assistant')) == ''.join(f'{i}\n' for i in range(1, 5001))
    assert len(sent) >= 10 and max(len(text) for text in sent) <= 2000 + 200  # 23,893 characters in pieces


async def test_nothing_buffered_is_lost_when_a_run_ends_or_is_stopped(scene, monkeypatch):
    seeded, _ = scene
    bob = seeded.users['bob']
    monkeypatch.setattr(session_worker, 'BATCH_SECONDS', 60)  # no batch is written before the run ends
    agent = agent_sessions.create(bob, seeded.worktree.id, 'shell', 'seq 1 3000')
    await settle(agent.id, 'completed')
    assert ''.join(texts(bob, agent.id, 'assistant')) == ''.join(f'{i}\n' for i in range(1, 3001))

    done = Path(seeded.worktree.path) / 'printed'
    agent_sessions.prompt(bob, agent.id, f'seq 3001 6000; touch {done}; sleep 30')
    await wait_for(done.exists)
    assert agent_sessions.stop(bob, agent.id) is True
    await settle(agent.id, 'stopped')
    assert ''.join(texts(bob, agent.id, 'assistant')) == ''.join(f'{i}\n' for i in range(1, 6001))
    assert texts(bob, agent.id)[-1] == 'Stopped by Bob.'


async def test_a_crash_is_failed_with_the_last_lines_and_never_a_traceback(scene):
    seeded, _ = scene
    agent = agent_sessions.create(seeded.owner, seeded.worktree.id, 'shell', 'echo oops >&2; exit 3')
    detail = await settle(agent.id, 'failed')
    assert detail['error'] == 'Shell exited with code 3'  # the shell's stderr is in its transcript
    assert 'oops' in ''.join(texts(seeded.owner, agent.id, 'assistant'))
    assert texts(seeded.owner, agent.id, 'error') == ['Shell exited with code 3']


async def test_a_missing_cli_names_the_command_and_how_to_install_it(scene, monkeypatch, tmp_path, instance_keys):
    seeded, workers = scene
    monkeypatch.setenv('PATH', '/usr/bin:/bin')
    monkeypatch.setattr(workers.settings, 'agent_cli_dir', tmp_path / 'no-clis')
    agent = agent_sessions.create(seeded.owner, seeded.worktree.id, 'codex', 'hello')
    detail = await settle(agent.id, 'failed')
    assert '`codex`' in detail['error'] and 'npm i -g @openai/codex@0.169.0' in detail['error']


async def test_attention_is_per_viewer_and_long_runs_chime_for_the_creator_only(scene, monkeypatch):
    seeded, _ = scene
    alice, bob = seeded.owner, seeded.users['bob']
    # however slow the machine, this is short
    monkeypatch.setattr(run_records, 'ATTENTION_AFTER', timedelta(seconds=60))
    chimes = {alice.id: [], bob.id: []}
    for user_id, got in chimes.items():
        events.bus.subscribe(topic('user', user_id), got.append)
    quick = agent_sessions.create(alice, seeded.worktree.id, 'shell', 'echo quick')
    await settle(quick.id, 'completed')
    assert agent_sessions.board_attention(alice, seeded.board.id)['cards'] == []  # a short shell run needs nobody

    monkeypatch.setattr(run_records, 'ATTENTION_AFTER', timedelta(seconds=0.3))  # and a 0.5 s run is long
    agent = agent_sessions.create(alice, seeded.worktree.id, 'shell', 'sleep 0.5; echo done')
    await wait_for(lambda: agent_sessions.board_attention(bob, seeded.board.id)['running'])
    await settle(agent.id, 'completed')
    for viewer in (alice, bob):
        assert agent_sessions.board_attention(viewer, seeded.board.id)['cards'] == [seeded.worktree.id]
    agent_sessions.acknowledge(bob, agent.id)
    assert agent_sessions.board_attention(bob, seeded.board.id)['cards'] == []
    assert agent_sessions.board_attention(alice, seeded.board.id)['cards'] == [seeded.worktree.id]
    finished = [e for e in chimes[alice.id] if e['type'] == 'run_finished']
    assert [e['outcome'] for e in finished] == ['completed', 'completed'] and finished[-1]['seconds'] >= 0.5
    assert not [e for e in chimes[bob.id] if e['type'] == 'run_finished']  # Bob neither created nor follows it
    agent_sessions.set_following(bob, agent.id, True)
    agent_sessions.prompt(alice, agent.id, 'echo again')
    await settle(agent.id, 'completed')
    assert [e for e in chimes[bob.id] if e['type'] == 'run_finished']


async def test_viewers_cannot_start_or_prompt_sessions(scene):
    seeded, _ = scene
    dan = seeded.users['dan']
    from agor.errors import Forbidden
    with pytest.raises(Forbidden):
        agent_sessions.create(dan, seeded.worktree.id, 'shell', 'echo hi')


async def test_watchdog_fails_vanished_runs_and_flags_silent_ones(scene, settings):
    seeded, workers = scene
    gone = subprocess.Popen(['true'])
    gone.wait()
    ghost = _running_row(seeded, pid=gone.pid)
    settings.session_stuck_seconds = 1
    quiet = agent_sessions.create(seeded.owner, seeded.worktree.id, 'shell', 'sleep 3')
    await asyncio.sleep(1.5)
    await workers.check()
    assert agent_sessions.get(seeded.owner, ghost)['error'] == VANISHED_REASON
    detail = agent_sessions.get(seeded.owner, quiet.id)
    assert detail['stuck'] is True and detail['status_label'] == 'stuck?'
    await settle(quiet.id, 'completed')


async def test_restart_fails_the_interrupted_run_keeps_the_transcript_and_serves_the_queue(settings, git_repo):
    seeded = seed_board(settings, git_repo)
    orphan = subprocess.Popen(['sleep', '60'], start_new_session=True)
    agent_id = _running_row(seeded, pid=orphan.pid)
    run_records.record_events(agent_id, 'turn-1', [TranscriptEvent('assistant', 'output before the restart')])
    agent_sessions.prompt(seeded.owner, agent_id, 'echo after restart')
    workers = SessionWorkers(settings)
    await workers.start()  # what main.py does when the app starts again
    try:
        assert orphan.wait(timeout=5) == -signal.SIGTERM
        await settle(agent_id, 'completed')
        transcript = texts(seeded.owner, agent_id)
        assert 'output before the restart' in transcript and RESTART_REASON in transcript
        assert 'after restart\n' in transcript
    finally:
        await workers.stop_all()


def _running_row(seeded, *, pid: int) -> str:
    """A session a previous process left `running` with that pid."""
    with db.transaction() as session:
        agent = AgentSession(worktree_id=seeded.worktree.id, created_by=seeded.owner.id, runtime='shell',
                             title='left running', status='running', pid=pid, last_output_at=utcnow())
        session.add(agent)
        session.flush()
        session.add(SessionTurn(session_id=agent.id, created_by=seeded.owner.id, prompt='sleep 60', status='running',
                                started_at=utcnow()))
        return agent.id


def _pid(session_id: str) -> int | None:
    with db.read() as session:
        return session.get(AgentSession, session_id).pid


def racing_looks_and_follows(settings, git_repo) -> None:
    """Eight tabs of Bob's acknowledge Alice's session at once (the panel opening, a status change), and follow it:
    each succeeds, and Bob is following it once."""
    team = seed_board(settings, git_repo, bob=Role.member)
    bob = team.users['bob']
    agent = agent_sessions.create(team.owner, team.worktree.id, 'shell')
    at_once(8, lambda _: agent_sessions.acknowledge(bob, agent.id))
    at_once(8, lambda _: agent_sessions.set_following(bob, agent.id, True))
    assert agent_sessions.get(bob, agent.id)['following']
    agent_sessions.set_following(bob, agent.id, False)
    assert not agent_sessions.get(bob, agent.id)['following']


def test_racing_looks_and_follows(settings, git_repo):
    racing_looks_and_follows(settings, git_repo)
