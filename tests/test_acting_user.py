"""Who acts NOW: server-side logins, the account events that close open pages, and the loop-thread guard."""
import asyncio
import json

import httpx
import pytest
from sqlmodel import select

from agor import auth, db, events, gitops, logins
from agor.events import AccountChanged, LoggedOut, topic
from agor.errors import SignedOut
from agor.models import CardPlacement, Role, Zone

from .app_server import login_cookie
from .conftest import PASSWORD
from .ws_client import WsPage


@pytest.fixture
def heard():
    """Events published on the bus, by topic (the bus delivers synchronously while no loop is bound)."""
    received: dict[str, list[dict]] = {}
    unsubscribes = []

    def listen(topic: str) -> list[dict]:
        unsubscribes.append(events.bus.subscribe(topic, received.setdefault(topic, []).append))
        return received[topic]
    yield listen
    for unsubscribe in unsubscribes:
        unsubscribe()


def test_a_login_acts_as_the_account_as_it_is_now(make_user):
    owner, carol = make_user('owner'), make_user('member', 'Carol')
    token = logins.open_login(carol.id)
    assert logins.acting_user(token).role == 'member'
    auth.set_role(owner, carol.id, Role.viewer)
    assert logins.acting_user(token).role == 'viewer'  # the role stored now, not the one at login
    auth.set_active(owner, carol.id, False)
    with pytest.raises(SignedOut):
        logins.acting_user(token)
    auth.set_active(owner, carol.id, True)
    assert logins.acting_user(token).id == carol.id


def test_logging_out_ends_that_login_only_and_is_announced(make_user, heard):
    bob = make_user('member', 'Bob')
    laptop, phone = logins.open_login(bob.id), logins.open_login(bob.id)
    announced = heard(topic('user', bob.id))
    laptop_id = logins.current(laptop)[0]
    logins.end(laptop)
    with pytest.raises(SignedOut):
        logins.acting_user(laptop)
    assert logins.acting_user(phone).id == bob.id
    assert announced == [LoggedOut(type='logged_out', login=laptop_id)]
    tablet = logins.open_login(bob.id, replacing=phone)  # a new login in the same browser ends the one before
    with pytest.raises(SignedOut):
        logins.acting_user(phone)
    assert logins.acting_user(tablet).id == bob.id
    for token in (None, '', 'forged-token'):
        with pytest.raises(SignedOut):
            logins.acting_user(token)


def test_role_and_active_changes_are_announced_to_that_user(make_user, heard):
    owner, carol = make_user('owner'), make_user('member', 'Carol')
    announced = heard(topic('user', carol.id))
    auth.set_role(owner, carol.id, Role.viewer)
    assert announced == [AccountChanged(type='account_changed')]
    auth.set_active(owner, carol.id, False)
    assert announced == [AccountChanged(type='account_changed')] * 2


def test_database_and_git_refuse_the_serving_loop(make_user, git_repo):
    owner = make_user('owner')

    async def on_the_loop() -> None:
        db.guard_loop(asyncio.get_running_loop())
        try:
            with pytest.raises(db.OnEventLoop):
                auth.list_users()  # a read
            with pytest.raises(db.OnEventLoop):
                auth.create_user(owner, 'x@example.com', 'X', PASSWORD, Role.member)  # a transaction
            with pytest.raises(db.OnEventLoop):
                gitops.default_branch(git_repo)
            # the same calls off the loop, as components.act makes them
            assert len(await asyncio.to_thread(auth.list_users)) == 1
            assert await asyncio.to_thread(gitops.default_branch, git_repo) == 'main'
        finally:
            db.guard_loop(None)
    asyncio.run(on_the_loop())
    assert [u.email for u in auth.list_users()] == ['owner@example.com']  # the refused transaction stored nothing


def test_a_socket_cannot_send_events_as_another_page(board_app):
    """NiceGUI routes an event to the page its message names: Bob's socket names Alice's page (its id and her
    canvas's `card_move` listener) to move the card as Alice. Only Alice's own socket is heard for her page. Bob then
    moves the zone from his own page, which is heard (and marks when his earlier message has been dealt with)."""
    server, seeded = board_app
    owner, card, zone = seeded.owner, seeded.worktree.id, seeded.zone.id

    async def forge() -> None:
        async with httpx.AsyncClient(timeout=30) as http:
            alice = await WsPage(server, login_cookie(server, owner.id)).open(http, f'/b/{seeded.board.slug}')
            bob = await WsPage(server, login_cookie(server, seeded.users['bob'].id)).open(http, f'/b/{seeded.board.slug}')
            try:
                canvas = alice.one(event='card_move')
                await bob.sio.emit('event', {'id': int(canvas), 'client_id': alice.client_id,
                                             'listener_id': alice.listener(canvas, 'card_move'),
                                             'args': [json.dumps({'id': card, 'x': 2000, 'y': 2000})]})
                await bob.fire(bob.one(event='zone_change'), 'zone_change', {'id': zone, 'x': 650})
                while (await asyncio.to_thread(stored, Zone, zone)).x != 650:  # the database off the test's loop
                    await asyncio.sleep(0.1)
                await asyncio.sleep(1)  # the forged move, had it been heard, ran meanwhile
            finally:
                await bob.close()
                await alice.close()
    asyncio.run(forge())
    with db.read() as session:
        moved = session.exec(select(CardPlacement).where(CardPlacement.worktree_id == card)).one()
    assert (moved.x, moved.y) == (0, 100)


def stored(model, id_: str):
    with db.read() as session:
        return session.get(model, id_)
