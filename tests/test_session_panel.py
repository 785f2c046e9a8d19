"""The session panel's live transcript, through NiceGUI's simulated user: a viewer who opens a session while it
streams gets every character once, although events overlap the transcript it reads from the database."""
import asyncio
import html
import json
import re

from nicegui import Client, ui
from nicegui.testing import User as TestUser

from agor import agent_sessions, db, run_records
from agor.config import load_settings
from agor.models import AgentSession, SessionTurn, utcnow
from agor.runtimes.base import TranscriptEvent

from .conftest import seed_board
from .test_pages import log_in

APPEND = re.compile(r'agorAppend\((\d+), (".*")\)$', re.S)


def lines(*numbers: int) -> list[TranscriptEvent]:
    return [TranscriptEvent('assistant', f'line {n}\n', {'delta': True}) for n in numbers]


async def test_a_late_joiner_gets_the_whole_streaming_transcript_once(user: TestUser, git_repo, monkeypatch):
    await user.open('/')  # startup has run: the database exists
    seeded = await asyncio.to_thread(seed_board, load_settings(), git_repo)  # the database is never used on the loop
    agent_id, turn_id = await asyncio.to_thread(_streaming_session, seeded)
    await asyncio.to_thread(run_records.record_events, agent_id, turn_id, lines(1))

    read = agent_sessions.transcript

    def read_while_it_streams(viewer, session_id):  # the panel listens, then reads: output arrives around the read
        run_records.record_events(agent_id, turn_id, lines(2))  # committed before the read: read AND heard
        entries = read(viewer, session_id)
        run_records.record_events(agent_id, turn_id, lines(3, 4))  # after the read: heard only
        return entries
    monkeypatch.setattr(agent_sessions, 'transcript', read_while_it_streams)
    sent: list[tuple[int, str]] = []  # what the browser is told to append, by element id
    run_javascript = Client.run_javascript

    def record(client, code, **kwargs):
        if match := APPEND.match(code):
            sent.append((int(match.group(1)), json.loads(match.group(2))))
        return run_javascript(client, code, **kwargs)
    monkeypatch.setattr(Client, 'run_javascript', record)

    await log_in(user, 'alice@example.com')
    await user.open(f'/b/{seeded.board.slug}?session={agent_id}')
    await user.should_see('line 1', retries=30)
    await asyncio.to_thread(run_records.record_events, agent_id, turn_id, lines(5))  # live
    for _ in range(100):
        if any('line 5' in text for _, text in sent):
            break
        await asyncio.sleep(0.05)
    entry = next(e for e in user.find(kind=ui.html).elements if 'agor-entry-assistant' in e.classes)
    drawn = html.unescape(re.sub(r'<[^>]+>', '', entry.content))
    shown = drawn + ''.join(text for element_id, text in sent if element_id == entry.id)
    assert shown == ''.join(f'line {n}\n' for n in range(1, 6))


def _streaming_session(seeded) -> tuple[str, str]:
    """A shell session with a turn whose output the test writes itself (no session worker involved)."""
    with db.transaction() as session:
        agent = AgentSession(worktree_id=seeded.worktree.id, created_by=seeded.owner.id, runtime='shell',
                             title='streaming')
        session.add(agent)
        session.flush()
        turn = SessionTurn(session_id=agent.id, created_by=seeded.owner.id, prompt='seq 5', status='running',
                           started_at=utcnow())
        session.add(turn)
        session.flush()
        return agent.id, turn.id
