"""Demo mode: the seeded team, boards and real worktrees; the Review zone's trigger runs for real; reset."""
import asyncio

from agor import agent_sessions, auth, boards, demo, triggers
from agor.session_worker import SessionWorkers


async def test_demo_seed_trigger_and_reset(settings):
    demo.ensure_seeded(settings)
    carol = next(u for u in auth.list_users() if u.email == 'carol@example.com')
    listed = {b['name']: b for b in boards.list_boards(carol)}
    assert set(listed) == {'Sprint 42', 'Platform'}
    state = boards.board_state(carol, listed['Sprint 42']['id'])
    review = next(z for z in state['zones'] if z['label'] == 'Review')
    assert [z['label'] for z in state['zones']] == ['Backlog', 'In progress', 'Review'] and review['trigger']
    card = next(c for c in state['cards'] if c['name'] == 'auth-fix')

    workers = SessionWorkers(settings)
    await workers.start()
    try:
        fired = await asyncio.to_thread(triggers.drop_card, carol, listed['Sprint 42']['id'], card['id'],
                                        review['x'] + 40, review['y'] + 200)
        assert fired['status'] == 'started' and fired['by'] == 'Carol Diaz'
        for _ in range(200):
            detail = agent_sessions.get(carol, fired['session_id'])
            if detail['status'] == 'completed':
                break
            await asyncio.sleep(0.05)
        entries = agent_sessions.transcript(carol, fired['session_id'])
        output = ''.join(e['text'] for e in entries if e['kind'] == 'assistant')
        assert detail['status'] == 'completed' and 'Review of auth-fix for Carol Diaz' in output
        assert 'Add tests/test_auth.py' in output  # git log ran in the worktree
    finally:
        await workers.stop_all()

    demo.reset(settings)
    assert triggers.history(auth.list_users()[0], review['id']) == []  # the old zone is gone with its history
    assert {b['name'] for b in boards.list_boards(auth.list_users()[0])} == {'Sprint 42', 'Platform'}
