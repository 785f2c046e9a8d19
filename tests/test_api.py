"""The HTTP API under /api/v1 against the real app on loopback: each route's success, 401 without a key, 403 for a
role that may not, 404/422 with messages; cursor paging; the body cap; rate limits per key and per address; the
browser login with its CSRF header; the session stream; a placement through the API moving the card live in a
browser viewer's page and firing the zone trigger as a drag does."""
from __future__ import annotations

import itertools
import json
import re
from types import SimpleNamespace

import httpx
import pytest

from agor import api_keys, db, user_secrets
from agor.config import load_settings
from agor.models import Role

from .app_server import login_cookie, open_board, running_app
from .conftest import PASSWORD, seed_board

RATE = 60  # AGOR_API_REQUESTS_PER_MINUTE of the app under test: every test makes its own keys
_addresses = (f'198.51.100.{n}' for n in itertools.count(1))


@pytest.fixture(scope='module')
def world(tmp_path_factory):
    """One app for the module (AGOR_TRUSTED_PROXIES=127.0.0.1, so each test's client is its own address): Alice the
    owner, Bob a member, Vic a viewer, Mia a member who is not on Alice's private board 'Secret'."""
    tmp = tmp_path_factory.mktemp('api')
    repo = _git_repo(tmp / 'src' / 'shop')
    with pytest.MonkeyPatch.context() as env, \
            running_app(tmp / 'app', AGOR_TRUSTED_PROXIES='127.0.0.1', AGOR_REPO_ROOTS=str(tmp),
                        AGOR_API_REQUESTS_PER_MINUTE=str(RATE)) as server:
        env.setenv('AGOR_REPO_ROOTS', str(tmp))
        db.init(server.database_url)
        settings = load_settings(data_dir=str(server.data_dir))
        seeded = seed_board(settings, repo, bob=Role.member, vic=Role.viewer, mia=Role.member)
        from agor import boards, repos
        secret = boards.create_board(seeded.owner, 'Secret')
        boards.set_access(seeded.owner, secret.id, private=True, members=[], others_can='view')
        hidden = repos.create_worktree(settings, seeded.owner, seeded.worktree.repo_id, 'hidden-work')
        boards.place_card(seeded.owner, secret.id, hidden.id, 0, 0)
        yield SimpleNamespace(server=server, settings=settings, secret=secret, hidden=hidden, **vars(seeded))


def _git_repo(path):
    import subprocess
    path.mkdir(parents=True)
    for args in (['init', '-q', '-b', 'main'], ['commit', '-q', '--allow-empty', '-m', 'start']):
        subprocess.run(['git', '-c', 'user.name=T', '-c', 'user.email=t@example.com', *args], cwd=path, check=True)
    return path


def client(world, who: str | None = None, **headers: str) -> httpx.Client:
    """A client from an address of its own, with a new key of `who` (none: no key)."""
    if who is not None:
        _, key = api_keys.create(world.settings, world.users[who], f'test {who}')
        headers['Authorization'] = f'Bearer {key}'
    return httpx.Client(base_url=world.server.url + '/api/v1', timeout=30,
                        headers={'X-Forwarded-For': next(_addresses), **headers})


def refused(response: httpx.Response, status: int, message: str) -> None:
    assert response.status_code == status, response.text
    body = response.json()
    assert set(body) == {'code', 'message'}, body
    assert re.search(message, body['message']), body
    assert 'Traceback' not in response.text


# ---- every route -----------------------------------------------------------------------------------------------------

def test_every_documented_route_answers_401_json_without_a_key(world):
    schema = httpx.get(f'{world.server.url}/api/openapi.json', timeout=30).json()
    anonymous = client(world)
    checked = 0
    for path, operations in schema['paths'].items():
        concrete = re.sub(r'\{[^}]+\}', 'x', path.removeprefix('/api/v1'))
        for method, operation in operations.items():
            assert operation['security'] == [{'HTTPBearer': []}], (method, path)
            answer = anonymous.request(method.upper(), concrete, json={})
            refused(answer, 401, 'Not authenticated: send a personal API key')
            assert answer.json()['code'] == 'unauthorized' and answer.headers['www-authenticate'] == 'Bearer'
            checked += 1
    assert checked >= 30
    assert httpx.get(f'{world.server.url}/api/docs', timeout=30).text.count('/api/docs/assets/swagger-ui') == 2


def test_me_with_a_good_a_revoked_and_a_malformed_key(world):
    alice = client(world, 'alice')
    assert alice.get('/me').json() == {'id': world.owner.id, 'email': 'alice@example.com', 'name': 'Alice',
                                       'role': 'owner', 'mcp_authenticated_server_ids': []}
    view, key = api_keys.create(world.settings, world.owner, 'to revoke')
    api_keys.revoke(world.owner, view['id'])
    refused(client(world, Authorization=f'Bearer {key}').get('/me'), 401, '^This API key was revoked.$')
    refused(client(world, Authorization='Bearer agor_nope').get('/me'), 401, '^Malformed API key')
    refused(alice.get('/no/such/route'), 404, 'No API route GET /api/v1/no/such/route')


def test_a_viewer_key_reads_everything_and_writes_nothing(world):
    vic = client(world, 'vic')
    wt = world.worktree.id
    thread = client(world, 'alice').post('/boards/sprint/comments', json={'body': 'for Vic to read'}).json()['id']
    assert [b['slug'] for b in vic.get('/boards').json()['items']] == ['sprint']
    for path in ('/boards/sprint/zones', '/boards/sprint/placements', '/worktrees', f'/worktrees/{wt}',
                 '/boards/sprint/comments', '/notifications', f'/worktrees/{wt}/sessions', '/repos', '/env', '/me'):
        assert vic.get(path).status_code == 200, path
    writes = [
        ('POST', '/boards', {'name': 'Vic board'}, 'cannot create boards'),
        ('PATCH', '/boards/sprint', {'name': 'Renamed'}, 'cannot edit boards'),
        ('POST', '/boards/sprint/zones', {'label': 'Mine'}, 'cannot create zones'),
        ('PATCH', f'/zones/{world.zone.id}', {'label': 'Mine'}, 'cannot edit zones'),
        ('DELETE', f'/zones/{world.zone.id}', None, 'cannot delete zones'),
        ('PUT', f'/boards/sprint/placements/{wt}', {'x': 700, 'y': 50}, 'cannot move cards'),
        ('DELETE', f'/boards/sprint/placements/{wt}', None, 'cannot remove cards from boards'),
        ('POST', '/worktrees', {'repo': 'shop', 'name': 'vic-work'}, 'cannot create worktrees'),
        ('POST', '/boards/sprint/comments', {'body': 'hello'}, 'cannot comment'),
        ('POST', '/sessions', {'worktree': wt, 'agent': 'shell', 'prompt': 'echo'}, 'cannot start sessions'),
        ('POST', '/firings/any/pick', {}, 'cannot start sessions'),
        ('POST', f'/comments/{thread}/replies', {'body': 'me too'}, 'cannot reply to comments'),
        ('POST', f'/comments/{thread}/resolve', {'resolved': True}, 'cannot resolve threads'),
        ('POST', f'/comments/{thread}/reactions', {'emoji': '👍'}, 'cannot react to comments'),
    ]
    for method, path, body, reason in writes:
        refused(vic.request(method, path, json=body), 403, rf'^Your role \(viewer\) {reason}; it needs member')
    alice = client(world, 'alice')
    [left] = [t for t in alice.get('/boards/sprint/comments').json()['items'] if t['id'] == thread]
    assert (len(left['comments']), left['resolved'], left['comments'][0]['reactions']) == (1, False, [])
    assert [b['name'] for b in alice.get('/boards').json()['items']] == ['Secret', 'Sprint']
    assert [c['x'] for c in alice.get('/boards/sprint/placements').json()['items']] == [0.0]
    assert [z['label'] for z in alice.get('/boards/sprint/zones').json()] == ['Review']


def test_a_private_board_and_its_worktree_do_not_exist_for_someone_without_access(world):
    mia = client(world, 'mia')
    refused(mia.get('/boards/secret'), 404, "^No board 'secret'.$")
    refused(mia.get(f'/boards/{world.secret.id}/comments'), 404, 'No board')
    refused(mia.get(f'/worktrees/{world.hidden.id}'), 404, 'No worktree')
    refused(mia.post('/sessions', json={'worktree': world.hidden.id, 'agent': 'shell', 'prompt': 'ls'}), 404,
            'No worktree')
    assert 'hidden-work' not in mia.get('/worktrees').text
    assert client(world, 'alice').get(f'/worktrees/{world.hidden.id}').json()['name'] == 'hidden-work'


# ---- boards, zones, placements ---------------------------------------------------------------------------------------

def test_boards_page_with_a_cursor_and_bad_input_is_a_422_with_the_reason(world):
    bob = client(world, 'bob')
    made = [bob.post('/boards', json={'name': f'Paging {n}', 'color': '#112233'}) for n in range(3)]
    assert [m.status_code for m in made] == [201, 201, 201] and made[0].json()['slug'] == 'paging-0'
    names, cursor = [], None
    for _ in range(10):
        page = bob.get('/boards', params={'limit': 2, **({'cursor': cursor} if cursor else {})}).json()
        names += [b['name'] for b in page['items']]
        cursor = page['next_cursor']
        if cursor is None:
            break
    assert names == sorted(names) and {'Paging 0', 'Paging 1', 'Paging 2', 'Sprint'} <= set(names)
    assert 'Secret' not in names  # Bob is not on Alice's private board
    refused(bob.get('/boards', params={'cursor': 'garbage!'}), 422, '^Invalid cursor')
    refused(bob.get('/boards', params={'limit': 0}), 422, 'limit: Input should be greater than or equal to 1')
    refused(bob.post('/boards', json={'name': 'Bad', 'color': 'red'}), 422, "^'red' is not a colour like #0d9488")
    refused(bob.post('/boards', json={}), 422, r'^Invalid request: name: Field required')
    refused(bob.post('/boards', content=b'{not json', headers={'content-type': 'application/json'}), 422,
            'Invalid request')
    renamed = bob.patch('/boards/paging-0', json={'name': 'Paging zero'}).json()
    assert (renamed['name'], renamed['slug']) == ('Paging zero', 'paging-0')
    refused(bob.get('/boards/nope'), 404, "^No board 'nope'.$")


def test_zones_are_created_changed_and_deleted_with_the_ui_rules(world):
    bob = client(world, 'bob')
    board = bob.post('/boards', json={'name': 'Zones'}).json()
    zone = bob.post(f'/boards/{board["slug"]}/zones', json={'label': 'Doing', 'x': 10, 'y': 20}).json()
    assert (zone['label'], zone['x'], zone['w'], zone['trigger_template']) == ('Doing', 10.0, 480.0, '')
    locked = bob.patch(f'/zones/{zone["id"]}', json={'locked': True, 'label': 'Done'}).json()
    assert (locked['locked'], locked['label']) == (True, 'Done')
    refused(bob.patch(f'/zones/{zone["id"]}', json={'x': 500}), 403, '^Zone “Done” is locked: unlock it to move')
    refused(bob.patch(f'/zones/{zone["id"]}', json={'trigger_template': '{{ nope.x }}'}), 422,
            '^The trigger template cannot be saved')
    refused(bob.patch(f'/zones/{zone["id"]}', json={'w': 5}), 403, 'locked')
    assert bob.patch(f'/zones/{zone["id"]}', json={'locked': False}).json()['locked'] is False
    refused(bob.patch(f'/zones/{zone["id"]}', json={'w': 5}), 422, 'A zone is between 80 and 20000 pixels')
    assert bob.delete(f'/zones/{zone["id"]}').status_code == 204
    refused(bob.delete(f'/zones/{zone["id"]}'), 404, '^This zone no longer exists.$')
    assert bob.get(f'/boards/{board["slug"]}/zones').json() == []


def test_a_placement_moves_the_card_and_fires_the_zone_trigger_once_as_a_drag_does(world):
    bob, alice = client(world, 'bob'), client(world, 'alice')
    board = alice.post('/boards', json={'name': 'Triggers'}).json()['slug']
    work = alice.post('/worktrees', json={'repo': 'shop', 'name': 'trigger-work', 'board': board, 'x': 0,
                                          'y': 0}).json()
    zone = alice.post(f'/boards/{board}/zones', json={'label': 'Run', 'x': 600, 'y': 0, 'w': 500, 'h': 400}).json()
    alice.patch(f'/zones/{zone["id"]}', json={'trigger_template': 'echo {{ worktree.name }}',
                                              'trigger_runtime': 'shell'}).raise_for_status()
    refused(bob.put(f'/boards/{board}/placements/{work["id"]}', json={'x': 'far', 'y': 0}), 422, 'x: Input should be')
    moved = alice.put(f'/boards/{board}/placements/trigger-work', json={'x': 700, 'y': 100}).json()
    assert (moved['card']['zone'], moved['card']['x'], moved['card']['y']) == (zone['id'], 700.0, 100.0)
    firing = moved['firing']
    assert (firing['status'], firing['prompt'], firing['zone']) == ('started', 'echo trigger-work', 'Run')
    sessions = alice.get(f'/worktrees/{work["id"]}/sessions').json()
    assert [s['id'] for s in sessions] == [firing['session_id']] and sessions[0]['runtime'] == 'shell'
    again = alice.put(f'/boards/{board}/placements/{work["id"]}', json={'x': 720, 'y': 120}).json()
    assert again['firing'] is None and again['card']['zone'] == zone['id']  # inside the zone already: no new firing
    assert len(alice.get(f'/worktrees/{work["id"]}/sessions').json()) == 1
    out = alice.put(f'/boards/{board}/placements/{work["id"]}', json={'x': 0, 'y': 0}).json()
    assert out['card']['zone'] is None and out['firing'] is None
    assert alice.delete(f'/boards/{board}/placements/{work["id"]}').status_code == 204
    assert alice.get(f'/boards/{board}/placements').json()['items'] == []
    refused(alice.put(f'/boards/{board}/placements/no-such-work', json={'x': 0, 'y': 0}), 404,
            "^No worktree 'no-such-work'.$")


# ---- worktrees -------------------------------------------------------------------------------------------------------

def test_worktrees_are_listed_per_board_and_created_like_the_dialog_does(world):
    bob = client(world, 'bob')
    on_sprint = bob.get('/worktrees', params={'board': 'sprint'}).json()['items']
    assert [w['name'] for w in on_sprint] == ['auth-fix']
    made = bob.post('/worktrees', json={'repo': 'shop', 'name': 'bob-work', 'board': 'sprint', 'x': 40, 'y': 300})
    assert made.status_code == 201, made.text
    assert (made.json()['branch'], made.json()['level']) == ('bob-work', 'all')
    assert {w['name'] for w in bob.get('/worktrees', params={'board': 'sprint'}).json()['items']} == \
        {'auth-fix', 'bob-work'}
    detail = bob.get('/worktrees/bob-work').json()
    assert detail['path'].endswith('/worktrees/shop/bob-work') and detail['notes'] == ''
    refused(bob.post('/worktrees', json={'repo': 'shop', 'name': 'bob-work'}), 409, '^shop already has a worktree')
    refused(bob.post('/worktrees', json={'repo': 'shop', 'name': 'Bad Name'}), 422, '^A worktree name uses')
    refused(bob.post('/worktrees', json={'repo': 'nope', 'name': 'x'}), 404, "^No repository 'nope'.$")
    assert [r['slug'] for r in bob.get('/repos').json()] == ['shop']


# ---- comments and notifications --------------------------------------------------------------------------------------

def test_comments_threads_replies_resolve_reactions_and_the_panel_filters(world):
    alice, bob = client(world, 'alice'), client(world, 'bob')
    thread = alice.post('/boards/sprint/comments', json={'body': 'Please review @Bob', 'target_type': 'worktree',
                                                         'target_id': 'auth-fix'})
    assert thread.status_code == 201, thread.text
    thread = thread.json()
    assert (thread['target_label'], thread['comments'][0]['mentions']) == ('auth-fix', [world.users['bob'].id])
    reply = bob.post(f'/comments/{thread["id"]}/replies', json={'body': 'On it'}).json()
    assert (reply['author'], reply['parent_id']) == ('Bob', thread['id'])
    assert bob.post(f'/comments/{reply["id"]}/reactions', json={'emoji': '🚀'}).json() == {'added': True}
    assert bob.post(f'/comments/{reply["id"]}/reactions', json={'emoji': '🚀'}).json() == {'added': False}
    refused(bob.post(f'/comments/{reply["id"]}/reactions', json={'emoji': 'x'}), 422, '^Pick one of')
    refused(bob.post(f'/comments/{reply["id"]}/replies', json={'body': 'deeper'}), 422, 'threads have two levels')
    refused(bob.post('/comments/nope/replies', json={'body': 'x'}), 404, 'comment')
    refused(bob.post('/boards/sprint/comments', json={'body': ' '}), 422, '')

    def ids(**params: str) -> list[str]:
        return [t['id'] for t in bob.get('/boards/sprint/comments', params=params).json()['items']]
    assert thread['id'] in ids() and thread['id'] in ids(filter='mentions') and thread['id'] in ids(filter='mine')
    assert thread['id'] in ids(q='REVIEW') and thread['id'] not in ids(q='nothing like it')
    resolved = bob.post(f'/comments/{thread["id"]}/resolve', json={'resolved': True}).json()
    assert (resolved['resolved'], resolved['resolved_by']) == (True, 'Bob')
    assert thread['id'] not in ids() and thread['id'] in ids(filter='resolved')
    refused(bob.get('/boards/sprint/comments', params={'filter': 'odd'}), 422, 'filter')

    inbox = bob.get('/notifications', params={'unread': True}).json()['items']
    assert inbox[0]['title'] == 'Alice mentioned you on Sprint' and inbox[0]['read'] is False
    assert bob.post(f'/notifications/{inbox[0]["id"]}/read').json()['unread'] == len(inbox) - 1
    assert inbox[0]['id'] not in [n['id'] for n in bob.get('/notifications', params={'unread': True}).json()['items']]
    assert bob.post('/notifications/read').json() == {'unread': 0}
    newest = alice.get('/notifications').json()['items'][0]
    assert newest['title'] == 'Bob replied to your comment on Sprint'


# ---- sessions --------------------------------------------------------------------------------------------------------

def follow(api: httpx.Client, session_id: str, cursor: str | None = None) -> list[tuple[str, dict]]:
    """The stream's events until a `session` event says the turn ended."""
    seen = []
    with api.stream('GET', f'/sessions/{session_id}/stream', params={'cursor': cursor} if cursor else {},
                    timeout=httpx.Timeout(30, read=60)) as response:
        assert response.status_code == 200 and response.headers['content-type'].startswith('text/event-stream')
        event = None
        for line in response.iter_lines():
            if line.startswith('event:'):
                event = line[6:].strip()
            elif line.startswith('data:'):
                data = json.loads(line[5:])
                seen.append((event, data))
                if event == 'error' or (event == 'session' and data['status'] != 'running' and not data['queued']):
                    return seen
    return seen


def test_sessions_start_stream_page_prompt_and_stop(world):
    bob, vic = client(world, 'bob'), client(world, 'vic')
    started = bob.post('/sessions', json={'worktree': 'auth-fix', 'agent': 'shell', 'prompt': 'echo one; echo two'})
    assert started.status_code == 201, started.text
    session = started.json()
    assert (session['title'], session['creator']) == ('echo one; echo two', 'Bob')
    seen = follow(vic, session['id'])  # a viewer follows
    texts = ''.join(d['text'] for e, d in seen if e == 'entry' and d['kind'] == 'assistant')
    assert 'one\ntwo' in texts and seen[-1][1]['status'] == 'completed'
    page = bob.get(f'/sessions/{session["id"]}/transcript', params={'limit': 1}).json()
    assert [e['kind'] for e in page['items']] == ['user'] and page['next_cursor'] == str(page['items'][0]['id'])
    rest = bob.get(f'/sessions/{session["id"]}/transcript', params={'cursor': page['next_cursor']}).json()
    assert rest['items'] and all(e['id'] > page['items'][0]['id'] for e in rest['items'])
    refused(bob.get(f'/sessions/{session["id"]}/transcript', params={'cursor': 'x'}), 422, 'cursor')
    refused(bob.get(f'/sessions/{session["id"]}/transcript', params={'cursor': '9' * 20}), 422, 'cursor')

    last = rest['next_cursor']
    turn = bob.post(f'/sessions/{session["id"]}/prompts', json={'prompt': 'echo three'})
    assert turn.status_code == 201 and turn.json()['turn_id']
    again = follow(bob, session['id'], last)
    assert [d['text'] for e, d in again if e == 'entry'][:2] == ['echo three', 'three\n']  # only what followed

    refused(vic.post(f'/sessions/{session["id"]}/prompts', json={'prompt': 'echo no'}), 403,
            r'^Your role \(viewer\) cannot prompt sessions')
    refused(vic.post(f'/sessions/{session["id"]}/stop'), 403, r'^Your role \(viewer\) cannot stop sessions')
    refused(bob.post(f'/sessions/{session["id"]}/prompts', json={'prompt': '  '}), 422, '^Write a prompt first.$')
    refused(bob.post('/sessions', json={'worktree': 'auth-fix', 'agent': 'nope'}), 422, "^Unknown agent runtime 'nope'")
    refused(bob.get('/sessions/nope'), 404, 'session')
    refused(bob.get('/sessions/nope/stream'), 404, 'session')

    long = bob.post('/sessions', json={'worktree': 'auth-fix', 'agent': 'shell', 'prompt': 'echo go; sleep 30'})
    long_id = long.json()['id']
    with bob.stream('GET', f'/sessions/{long_id}/stream', timeout=httpx.Timeout(30, read=60)) as response:
        for line in response.iter_lines():
            if '"text": "go\\n"' in line:
                break
    assert bob.post(f'/sessions/{long_id}/stop').json() == {'stopped': True}
    ended = follow(bob, long_id)
    assert ended[-1][1]['status'] == 'stopped'
    assert any(d['text'] == 'Stopped by Bob.' for e, d in ended if e == 'entry')
    assert bob.post(f'/sessions/{long_id}/stop').json() == {'stopped': False}


def test_a_session_on_a_private_board_is_not_found_for_someone_without_access(world):
    alice = client(world, 'alice')
    session = alice.post('/sessions', json={'worktree': 'hidden-work', 'agent': 'shell'}).json()
    mia = client(world, 'mia')
    for path in (f'/sessions/{session["id"]}', f'/sessions/{session["id"]}/transcript',
                 f'/sessions/{session["id"]}/stream'):
        refused(mia.get(path), 404, '^That session no longer exists.$')
    refused(mia.post(f'/sessions/{session["id"]}/prompts', json={'prompt': 'echo'}), 404, 'no longer exists')


def test_the_stream_ends_when_the_key_is_revoked(world):
    view, key = api_keys.create(world.settings, world.users['bob'], 'stream')
    bob = client(world, Authorization=f'Bearer {key}')
    session = bob.post('/sessions', json={'worktree': 'auth-fix', 'agent': 'shell'}).json()
    with bob.stream('GET', f'/sessions/{session["id"]}/stream', timeout=httpx.Timeout(30, read=60)) as response:
        lines = response.iter_lines()
        assert next(lines) == 'event: session'  # no entries yet
        api_keys.revoke(world.users['bob'], view['id'])  # a change of the session makes the stream check again:
        client(world, 'alice').post(f'/sessions/{session["id"]}/prompts', json={'prompt': 'echo wake'})
        rest = [line for line in lines if line.startswith(('event:', 'data:'))]
    assert rest[-2:] == ['event: error', 'data: {"code": "gone", "message": "This API key was revoked."}']


def test_a_stream_outlives_its_keys_rate_limit(world):
    """The stream re-checks its caller at every change of the session: that spends none of the key's requests."""
    _, key = api_keys.create(world.settings, world.users['bob'], 'busy')
    bob = client(world, Authorization=f'Bearer {key}')
    session = bob.post('/sessions', json={'worktree': 'auth-fix', 'agent': 'shell'}).json()
    with bob.stream('GET', f'/sessions/{session["id"]}/stream', timeout=httpx.Timeout(30, read=60)) as response:
        lines = response.iter_lines()
        assert next(lines) == 'event: session'
        while bob.get('/me').status_code != 429:  # the key's minute is used up
            pass
        client(world, 'alice').post(f'/sessions/{session["id"]}/prompts', json={'prompt': 'echo still-here'})
        seen = []
        for line in lines:
            seen.append(line)
            if 'still-here\\n' in line or line == 'event: error':
                break
    assert 'event: error' not in seen and any('still-here\\n' in line for line in seen)


# ---- env, limits, browser login --------------------------------------------------------------------------------------

def test_env_lists_names_and_scopes_never_values(world):
    user_secrets.init(world.settings)
    user_secrets.set_env(world.users['bob'], 'DEPLOY_TOKEN', 'very-secret-value-123')
    answer = client(world, 'bob').get('/env')
    assert [(v['name'], v['scope']) for v in answer.json()] == [('DEPLOY_TOKEN', 'global')]
    assert 'very-secret-value-123' not in answer.text
    assert client(world, 'alice').get('/env').json() == []


def test_bodies_over_the_cap_are_refused_with_413(world):
    bob = client(world, 'bob')
    big = json.dumps({'name': 'x' * 300_000})
    refused(bob.post('/boards', content=big, headers={'content-type': 'application/json'}), 413,
            '^The request body is limited to 256 KB.$')

    def chunks():
        for _ in range(40):
            yield b'x' * 10_000
    refused(bob.post('/boards', content=chunks(), headers={'content-type': 'application/json'}), 413, 'limited')
    assert 'x' * 100 not in bob.get('/boards').text


def test_a_key_is_limited_per_minute_with_retry_after(world):
    alice, other = client(world, 'alice'), client(world, 'alice')
    answers = []
    while len(answers) < 3 * RATE and (not answers or answers[-1].status_code == 200):
        answers.append(alice.get('/me'))  # a token comes back every second: the burst is RATE, then 1 a second
    assert len(answers) > RATE and {a.status_code for a in answers[:-1]} == {200}
    refused(answers[-1], 429, r'^Too many requests with this key: try again in \d+ s.$')
    assert int(answers[-1].headers['retry-after']) >= 1
    assert other.get('/me').status_code == 200  # another key of the same user has its own allowance


def test_an_address_with_many_failed_authentications_must_wait(world):
    from pages.api.base import AUTH_FAILURES
    address = next(_addresses)
    _, good = api_keys.create(world.settings, world.users['bob'], 'good')
    forger = client(world, Authorization='Bearer agor_00000000_' + 'x' * 43, **{'X-Forwarded-For': address})
    for _ in range(AUTH_FAILURES):
        refused(forger.get('/me'), 401, 'Unknown API key')
    refused(forger.get('/me'), 429, r'^Too many failed authentications from your address: try again in \d+ s.$')
    same_address = client(world, Authorization=f'Bearer {good}', **{'X-Forwarded-For': address})
    answer = same_address.get('/me')
    refused(answer, 429, 'Too many failed authentications')
    assert int(answer.headers['retry-after']) >= 1
    assert client(world, Authorization=f'Bearer {good}').get('/me').status_code == 200  # from elsewhere


def test_the_browser_login_reads_and_writes_only_with_the_csrf_header_from_its_own_origin(world):
    cookie = login_cookie(world.server, world.users['bob'].id)
    browser = client(world)
    browser.cookies.set('session', cookie)
    assert browser.get('/me').json()['name'] == 'Bob'
    refused(browser.post('/boards', json={'name': 'From a form'}), 403, '^A change with a browser login needs the '
                                                                         'X-Agor-CSRF header')
    refused(browser.post('/boards', json={'name': 'Cross site'}, headers={'X-Agor-CSRF': '1',
                                                                          'Origin': 'https://evil.example'}),
            403, '^Requests from https://evil.example may not act with your login.$')
    made = browser.post('/boards', json={'name': 'Same origin'},
                        headers={'X-Agor-CSRF': '1', 'Origin': world.server.url})
    assert made.status_code == 201 and made.json()['name'] == 'Same origin'
    assert 'Cross site' not in browser.get('/boards').text
    stranger = client(world)
    stranger.cookies.set('session', login_cookie(world.server, None))
    refused(stranger.get('/me'), 401, 'Not authenticated')


# ---- a placement seen live in a browser ------------------------------------------------------------------------------

@pytest.mark.browser
def test_a_placement_through_the_api_moves_the_card_live_for_a_browser_viewer(world, browser):
    from playwright.sync_api import expect
    page = open_board(browser, world.server, 'vic@example.com', PASSWORD, 'sprint', selector='.agor-card')
    card = page.locator(f'.agor-card[data-card-id="{world.worktree.id}"]')
    before = card.bounding_box()
    moved = client(world, 'bob').put(f'/boards/sprint/placements/{world.worktree.id}', json={'x': 650, 'y': 40})
    assert moved.json()['card']['zone'] == world.zone.id
    expect(card).to_have_attribute('data-zone-id', world.zone.id, timeout=5000)  # live, no reload
    page.wait_for_function('([el, x]) => el.getBoundingClientRect().x > x', arg=[card.element_handle(), before['x']])
    client(world, 'bob').put(f'/boards/sprint/placements/{world.worktree.id}', json={'x': 0, 'y': 100})
    expect(card).to_have_attribute('data-zone-id', '', timeout=5000)
    page.context.close()


def test_an_unexpected_error_is_a_generic_500_with_the_traceback_only_in_the_server_log(caplog):
    from fastapi import APIRouter, FastAPI
    from fastapi.testclient import TestClient

    from pages.api.base import SERVER_ERROR, ApiRoute
    router = APIRouter(route_class=ApiRoute)

    @router.get('/boom')
    def boom() -> None:
        raise RuntimeError('internal detail 4242')
    app = FastAPI()
    app.include_router(router)
    answer = TestClient(app).get('/boom')
    assert answer.status_code == 500 and answer.json() == {'code': 'server_error', 'message': SERVER_ERROR}
    assert '4242' not in answer.text
    assert 'internal detail 4242' in caplog.text and 'API GET /boom failed' in caplog.text


def test_the_stream_sends_each_piece_of_text_once_whatever_the_backlog_already_had():
    from pages.api.sessions import _Follower
    follower = _Follower(None, None, 'session', after=3)  # type: ignore[arg-type]
    entry = {'id': 4, 'turn_id': 't', 'kind': 'assistant', 'text': 'hel', 'data': {}, 'created_at': ''}
    assert follower._entry(entry).startswith('event: entry\n')  # from the backlog
    sent = [follower._message(p) for p in (
        {'type': 'entry', 'entry': {**entry, 'text': 'he'}},  # queued before the backlog was read: had it
        {'type': 'entry', 'entry': {**entry, 'id': 3}},  # before the cursor
        {'type': 'append', 'entry_id': 4, 'at': 2, 'text': 'l'},  # the backlog had it
        {'type': 'append', 'entry_id': 4, 'at': 2, 'text': 'llo'},  # half of it new
        {'type': 'append', 'entry_id': 4, 'at': 5, 'text': '!'},
        {'type': 'append', 'entry_id': 2, 'at': 0, 'text': 'old'},  # an entry before the cursor
        {'type': 'entry', 'entry': {**entry, 'id': 5, 'text': 'next'}},
    )]
    assert [json.loads(s.split('data: ')[1]) if s else None for s in sent] == [
        None, None, None, {'entry_id': 4, 'at': 3, 'text': 'lo'}, {'entry_id': 4, 'at': 5, 'text': '!'}, None,
        {**entry, 'id': 5, 'text': 'next'}]


# ---- MCP servers and the caller's own grants -------------------------------------------------------------------------

def test_mcp_servers_list_each_callers_own_grant_and_no_secret(world):
    from agor import mcp_servers
    from agor.models import McpClient, McpGrant
    alice, bob = world.users['alice'], world.users['bob']
    user_secrets.init(world.settings)  # the app's master secret: a server's header value is sealed
    oauth = mcp_servers.save_server(alice, None, {'name': 'tracker', 'transport': 'http', 'auth': 'oauth',
                                                  'url': 'http://127.0.0.1:9/mcp'}, True)
    keyed = mcp_servers.save_server(alice, None, {'name': 'keyed', 'transport': 'http', 'auth': 'header',
                                                  'url': 'http://127.0.0.1:9/mcp', 'header_value': 'sk-never-shown'},
                                    True)
    with db.transaction() as session:  # Bob's grant as the OAuth flow leaves it (tests/test_mcp_grants.py runs it)
        registered = McpClient(server_id=oauth['id'], issuer='http://127.0.0.1:9', client_id='c',
                               redirect_uri='http://127.0.0.1:9/cb')
        session.add(registered)
        session.flush()
        session.add(McpGrant(user_id=bob.id, server_id=oauth['id'], client_row=registered.id, access_token='sealed'))
    for who, grant, ids in (('bob', 'connected', [oauth['id']]), ('vic', 'not_connected', [])):
        caller = client(world, who)
        listed = {s['name']: s for s in caller.get('/mcp-servers').json()}
        assert (listed['tracker']['grant'], listed['keyed']['grant']) == (grant, None), who
        assert caller.get('/me').json()['mcp_authenticated_server_ids'] == ids
        assert 'sk-never-shown' not in caller.get('/mcp-servers').text
    assert keyed['header_set']
