"""The authorization matrix (issue 14): every page route and every server-side handler a page registers, as each kind
of actor, through one real app process and real websocket clients (tests/ws_client.py: NiceGUI's page load and
socket.io handshake, then the element's event message as the browser sends it). Asserts the allowed set EXACTLY.

Actors (each has a board, a zone, a worktree card and a spare worktree of its own, so all run at once):

    viewer        role viewer (its worktree lets others do `all`: what refuses it is the role)
    m_view ...    a member on a worktree Bob owns whose level (`others_can`) is view / session / prompt / all
    owner         Bob, a member, on his own worktree (at level `view`: what lets him is owning it)
    admin         role admin, on Bob's worktree at level `view`
    deactivated   an admin with an open tab whose account is then deactivated
    anonymous     no login: every page redirects to /login, so no page (and no handler) is ever built for it

How a handler is driven, for every actor alike: the actor's page is opened, and the dialog the handler lives in is
opened, while the account can do everything (admin, active, its worktrees at `all`), so the control exists and is
enabled on the page whatever the actor's real role shows. Then the actor's real state (role, active, its worktrees'
level) is written to the database behind the app's back (no event tells the page), and the event is sent. So every
row is also a forged event from a stale tab, and what decides is only the server's check of the user as they are
now (`components.act.act` + `agor.permissions`). The outcome is what a user observes: the database row changed (or
the dialog with the data opened, for reads), or a notice saying why not and nothing stored.

The inventory (page · handler → service call · target · allowed):

    /b/<slug> canvas        card_move (drop)               → triggers.drop_card        own card           MEMBERS
    /b/<slug> canvas        zone_change (move, resize)     → boards.update_zone        own zone           MEMBERS
    /b/<slug> canvas        card_click (card dialog)       → repos.worktree_details... worktree           READERS
    /b/<slug> card dialog   Others may (select)            → repos.set_level           worktree           OWNER_ADMIN
    /b/<slug> card dialog   Save notes and links           → repos.update_worktree_... worktree           LEVEL_ALL
    /b/<slug> card dialog   New session → Start session    → agent_sessions.create           worktree           LEVEL_SESSION
    /b/<slug> card dialog   Comment → submit               → comments.create           worktree           MEMBERS
    /b/<slug> card dialog   Remove from board              → boards.remove_card        worktree           LEVEL_ALL
    /b/<slug> card dialog   Archive                        → repos.set_archived        worktree           LEVEL_ALL
    /b/<slug> canvas        comment_at → submit            → comments.create           board              MEMBERS
    /b/<slug> canvas        session_click (session panel)  → agent_sessions.get/transcript   Alice's session    READERS
    /b/<slug> session panel Send (someone else's session)  → agent_sessions.prompt           Alice's session    LEVEL_PROMPT
    /b/<slug> session panel Send (own session)             → agent_sessions.prompt           own session        LEVEL_SESSION
    /b/<slug> session panel Stop (someone else's session)  → agent_sessions.stop             Alice's session    LEVEL_PROMPT
    /b/<slug> session panel Follow                         → agent_sessions.set_following    Alice's session    READERS
    /b/<slug> session panel Allow (an approval request)    → approvals.decide          Alice's session    LEVEL_PROMPT
    /b/<slug> session panel Variables → Save (own session) → user_secrets.set_session_env     own session        MEMBERS
    /b/<slug> session panel MCP → Save (own session)       → mcp_servers.set_session_servers  own session        MEMBERS
    /b/<slug> zone dialog   Save                           → boards.update_zone        own zone           MEMBERS
    /b/<slug> zone dialog   Delete                         → boards.delete_zone        own zone           MEMBERS
    /b/<slug> toolbar       Zone                           → boards.create_zone        board              MEMBERS
    /b/<slug> toolbar       Worktree → Create worktree     → repos.create_worktree     repository         MEMBERS
    /b/<slug> sharing       Save                           → boards.set_access         board (Alice's)    ADMIN
    /b/<slug> comments      Reply → submit                 → comments.reply            Alice's thread     MEMBERS
    /b/<slug> comments      Resolve                        → comments.set_resolved     Alice's thread     MEMBERS
    /b/<slug> comments      reaction 👍                    → comments.toggle_reaction  Alice's comment    MEMBERS
    /b/<slug> comments      Edit → submit                  → comments.edit             Alice's comment    ADMIN
    /b/<slug> comments      Delete → confirm               → comments.delete           Alice's comment    ADMIN
    header (every page)     Settings → Audio → Save        → preferences.set_chime     own settings       READERS
    settings General        Save name                      → profile.set_name          own profile        READERS
    settings General        upload (POST of the uploader)  → profile.set_avatar        own profile        READERS
    settings API keys       Create key                     → api_keys.create           own keys           READERS
    settings API keys       Revoke                         → api_keys.revoke           own key            READERS
    settings Codex          Save                           → runtime_settings.save     own defaults       MEMBERS
    settings MCP authoriz.  Disconnect                     → mcp_oauth.disconnect      own grant          READERS
    /                       New board → Create             → boards.create_board       -                  MEMBERS
    /                       board menu Rename → Save       → boards.update_board       spare board        MEMBERS
    /                       board menu Delete → Delete     → boards.delete_board       spare board        ADMIN
    /repos                  Register                       → repos.register_local      a local repository ADMIN
    /repos                  Place on board                 → boards.place_card         spare worktree     LEVEL_ALL
    /repos                  Archive                        → repos.set_archived        spare worktree     LEVEL_ALL
    /repos                  Delete → Delete                → repos.delete_worktree     spare worktree     LEVEL_ALL
    /admin                  role select                    → auth.set_role             a teammate         ADMIN
    /admin                  Deactivate                     → auth.set_active           a teammate         ADMIN
    /admin                  Create account                 → auth.create_user          -                  ADMIN
    /admin                  Create invite link             → auth.create_invite        -                  ADMIN
    /admin                  MCP servers → Add server → Save → mcp_servers.save_server  -                  ADMIN
    /b/<slug> zone dialog   trigger template (preview)     → triggers.preview          own zone           MEMBERS
    /b/<slug> picker        Run (after a drop, stale tab)  → triggers.pick             own firing         LEVEL_SESSION
    /b/<slug> zone dialog   Recent firings                 → triggers.history          trigger zone       READERS
    header (every page)     Inbox (open)                   → notifications.inbox       own entries        READERS
    header (every page)     Inbox → Mark all read          → notifications.mark_read   own entries        READERS
    /admin                  Chat gateway: New channel → Save → gateway.channels.save_channel -          ADMIN
    /admin                  Chat gateway: Link (a person)  → gateway.channels.map_identity  a channel      ADMIN
    /admin                  Chat gateway: Delete → Delete  → gateway.channels.delete_channel a channel     ADMIN
    settings Chat accounts  Make a code                    → gateway.links.new_code    own code           READERS
    settings Chat accounts  Unlink                         → gateway.links.unlink      own linked account READERS

Handlers that call the same service with the same arguments as a row above are that row (the boards list's and the
board's "Sharing and permissions" open one component; the repos page's "New worktree" and "Restore" are the board's
"Create worktree" and "Archive"; the other agent runtimes' Save in Settings is the Codex row with another runtime, and
"Use initials" is the upload's own-profile rule). Alice's inbox entry must never be listed or marked read by anyone.
Two shapes differ and have tests of their own below, over the same world: terminal messages (`ready` opens, `data`,
`resize`; `test_terminal_messages_as_every_actor`, a real tmux) and presence (cursors on a board that became
private; `test_presence_on_a_board_that_became_private_as_every_actor`). The terminal share's host menu is checked by
tests/test_terminals.py. The routes are `test_routes`, below.
"""
from __future__ import annotations

import asyncio
import contextlib
import os
import re
import signal
import subprocess
import time
from collections.abc import Awaitable, Callable, Iterator
from dataclasses import dataclass
from datetime import timedelta
from pathlib import Path
from types import SimpleNamespace
from typing import Any

import httpx
import pytest
from sqlalchemy import delete
from sqlmodel import col, select

from agor import agent_sessions, auth, boards, comments, db, repos, user_secrets
from agor.config import load_settings
from agor.models import (
    AgentSession,
    ApiKey,
    Approval,
    Board,
    CardPlacement,
    Comment,
    CommentReaction,
    GatewayChannel,
    GatewayIdentity,
    GatewayLinkCode,
    Invite,
    McpClient,
    McpGrant,
    McpServer,
    Notification,
    Repo,
    Role,
    RuntimeSetting,
    SessionEnvSelection,
    SessionFollow,
    SessionMcpServer,
    SessionTurn,
    User,
    UserAvatar,
    Worktree,
    Zone,
    ZoneFiring,
    utcnow,
)

from .app_server import login_cookie, running_app
from .conftest import EXECUTOR, PASSWORD, ensure_account
from .ws_client import WsPage

ACTORS = ('viewer', 'm_view', 'm_session', 'm_prompt', 'm_all', 'owner', 'admin', 'deactivated')
READERS = frozenset({'viewer', 'm_view', 'm_session', 'm_prompt', 'm_all', 'owner', 'admin'})
MEMBERS = READERS - {'viewer'}
LEVEL_SESSION = MEMBERS - {'m_view'}
LEVEL_PROMPT = LEVEL_SESSION - {'m_session'}
LEVEL_ALL = LEVEL_PROMPT - {'m_prompt'}
OWNER_ADMIN = frozenset({'owner', 'admin'})
ADMIN = frozenset({'admin'})
# the actor's real state: (role, active, the level of its worktrees)
STATE = {'viewer': ('viewer', True, 'all'), 'm_view': ('member', True, 'view'),
         'm_session': ('member', True, 'session'), 'm_prompt': ('member', True, 'prompt'),
         'm_all': ('member', True, 'all'), 'owner': ('member', True, 'view'), 'admin': ('admin', True, 'view'),
         'deactivated': ('admin', False, 'all')}
PROMPT_BOX = 'Prompt… (Ctrl+Enter to send; queued while a run is going)'
TEMPLATE_BOX = 'Prompt template (empty: no trigger)'
ALICES_ENTRY = 'For Alice only'


# ---- the world -------------------------------------------------------------------------------------------------------

def git_repo(path: Path) -> Path:
    path.mkdir(parents=True)
    run = lambda *a: subprocess.run(['git', *a], cwd=path, check=True, capture_output=True)
    run('init', '-q', '-b', 'main')
    (path / 'README.md').write_text('hi\n')
    run('add', 'README.md')
    run('-c', 'user.name=T', '-c', 'user.email=t@example.com', 'commit', '-qm', 'first')
    return path


@pytest.fixture(scope='module')
def world(tmp_path_factory):
    """One app process; Alice the instance owner; Bob (the `owner` actor) owns every actor's worktrees."""
    root = tmp_path_factory.mktemp('matrix')
    env = {'AGOR_REPO_ROOTS': str(root), 'AGOR_TMUX_DIR': str(root / 'tmux')}
    if os.geteuid() == 0:  # agents and terminals run as the executor account, which must pass through the temp dirs
        ensure_account(EXECUTOR)
        env['AGOR_EXECUTOR_ACCOUNT'] = EXECUTOR
        for directory in (root, root.parent):
            directory.chmod(0o711)
    source = git_repo(root / 'src' / 'shop')
    with running_app(root / 'app', **env) as server, tmux_servers_killed(root / 'tmux'):
        db.init(server.database_url)
        with pytest.MonkeyPatch.context() as patch:
            patch.setenv('AGOR_REPO_ROOTS', str(root))
            settings = load_settings(data_dir=str(server.data_dir))
        user_secrets.init(settings)  # the app sealed its check value with data/master_secret at start-up
        write(matrix_mcp_server)
        alice = auth.create_first_owner('alice@example.com', 'Alice', PASSWORD)
        bob = auth.create_user(alice, 'bob@example.com', 'Bob', PASSWORD, Role.member)
        repo = repos.register_local(settings, alice, str(source))
        targets = {}
        for actor in ACTORS:
            user = bob if actor == 'owner' else auth.create_user(
                alice, f'{actor}@example.com', actor.replace('_', ' ').title(), PASSWORD, Role.admin)
            board = boards.create_board(alice, f'Board {actor}')
            zone = boards.create_zone(alice, board.id, 'Review', x=600, y=0, w=500, h=400)
            trigger_zone = boards.create_zone(alice, board.id, 'Trigger', x=1300, y=0, w=500, h=400)
            boards.update_zone(alice, trigger_zone.id, trigger_template=f'true picked-by-{actor}',
                               trigger_behavior='show_picker', trigger_runtime='shell')
            worktree = repos.create_worktree(settings, bob, repo.id, f'wt-{actor}'.replace('_', '-'))
            spare = repos.create_worktree(settings, bob, repo.id, f'spare-{actor}'.replace('_', '-'))
            repos.set_level(bob, worktree.id, 'all')
            repos.set_level(bob, spare.id, 'all')
            boards.place_card(alice, board.id, worktree.id, 0, 100)
            thread = comments.create(alice, board.id, 'Thread of Alice')
            comments.reply(alice, thread.id, 'Reply of Alice')  # so deleting the thread's first comment keeps it
            user_secrets.set_env(user, 'DEPLOY_TOKEN', f'deploy-{actor}', 'session')
            targets[actor] = SimpleNamespace(
                actor=actor, name=user.name, user_id=user.id, board=board.id, slug=board.slug, zone=zone.id,
                trigger_zone=trigger_zone.id, worktree=worktree.id,
                spare=spare.id, spare_name=spare.name, thread=thread.id,
                spare_board=boards.create_board(alice, f'Spare {actor}').id,
                alice=alice.id, alices=agent_sessions.create(alice, worktree.id, 'shell').id,
                alices_idle=agent_sessions.create(alice, worktree.id, 'shell').id,
                own=agent_sessions.create(user, worktree.id, 'shell').id,
                teammate=auth.create_user(alice, f'mate-{actor}@example.com', f'Mate {actor}', PASSWORD,
                                          Role.member).id,
                repo=repo.id, new_repo=git_repo(root / 'src' / f'new-{actor}'),
                cookie=login_cookie(server, user.id))
            targets[actor].inbox = inbox_entry(user.id, alice.id, board.id, thread.id, f'For {actor}')
        alices_entry = inbox_entry(alice.id, bob.id, targets['owner'].board, targets['owner'].thread, ALICES_ENTRY)
        for t in targets.values():
            t.alices_entry = alices_entry
        yield SimpleNamespace(server=server, alice=alice, bob=bob, targets=targets, tmux_dir=root / 'tmux')


@contextlib.contextmanager
def tmux_servers_killed(tmux_dir: Path) -> Iterator[None]:
    """The shells the terminal rows start live on after the app (by design): they end with the test."""
    try:
        yield
    finally:
        for socket in tmux_dir.glob('*/tmux'):
            subprocess.run(['tmux', '-S', str(socket), 'kill-server'], capture_output=True, check=False)


def inbox_entry(user_id: str, actor_id: str, board_id: str, comment_id: str, title: str) -> str:
    """An unread inbox entry of `user_id` (as a mention by `actor_id` leaves it)."""
    entry = Notification(user_id=user_id, kind='mention', actor_id=actor_id, board_id=board_id,
                         comment_id=comment_id, title=title, link=f'/b/x?comment={comment_id}')
    with db.transaction() as session:
        session.add(entry)
        session.flush()
        return entry.id


def set_state(t: SimpleNamespace, role: str, active: bool, level: str) -> None:
    """The actor's account and its worktrees' level, written behind the app's back (no event reaches its pages)."""
    with db.transaction() as session:
        user = session.get(User, t.user_id)
        user.role, user.active = role, active
        for worktree_id in (t.worktree, t.spare):
            worktree = session.get(Worktree, worktree_id)
            if worktree is not None:
                worktree.others_can = level


def can_do_everything(t: SimpleNamespace) -> None:
    set_state(t, 'admin', True, 'all')


def as_it_really_is(t: SimpleNamespace) -> None:
    set_state(t, *STATE[t.actor])


def read(fn: Callable[[Any], Any]) -> Any:
    with db.read() as session:
        return fn(session)


def write(fn: Callable[[Any], Any]) -> None:
    with db.transaction() as session:
        fn(session)


# ---- driving a page --------------------------------------------------------------------------------------------------

Send = Callable[[], Awaitable[None]]
Prepare = Callable[[WsPage, SimpleNamespace], Awaitable[Send]]


def parent(page: WsPage, child: str) -> str:
    return next(id_ for id_, e in page.elements.items() if int(child) in e.get('children', []))


def after(page: WsPage, anchor: str, **conditions: Any) -> str:
    """The first element matching `conditions` built after `anchor` (the controls of one row of a list)."""
    return next(id_ for id_ in page.find(**conditions) if int(id_) > int(anchor))


def menu_item(page: WsPage, text: str, anchor: str = '-1') -> str:
    return parent(page, after(page, anchor, text=text, tag='q-item-section'))


def click(page: WsPage, element: str) -> Send:
    return lambda: page.fire(element, 'click')


def button(page: WsPage, label: str) -> str:
    return page.one(label=label, tag='q-btn')


async def type_into(page: WsPage, label: str, text: str) -> None:
    await page.fire(page.one(label=label, event='update:value'), 'update:value', text)


def canvas(page: WsPage, event: str, args: dict[str, Any]) -> Send:
    return lambda: page.fire(page.one(event=event), event, args)


async def card_dialog(page: WsPage, t: SimpleNamespace) -> None:
    await page.opened(canvas(page, 'card_click', {'id': t.worktree}), label='Others may')


async def session_panel(page: WsPage, session_id: str) -> None:
    await page.opened(canvas(page, 'session_click', {'id': session_id}), prop=('placeholder', PROMPT_BOX))


async def editor_of(page: WsPage, t: SimpleNamespace, action: Send) -> Send:
    editor = await page.opened(action, tag='nicegui-comment_editor')
    return lambda: page.fire(editor, 'submit', {'text': f'said by {t.actor}'})


async def dialog_button(page: WsPage, action: Send, label: str) -> Send:
    """Open a dialog; sending is clicking its button `label`."""
    return click(page, await page.opened(action, label=label, tag='q-btn'))


def built(page: WsPage, t: SimpleNamespace, **conditions: Any) -> bool:
    """The event made the server build this for the page (a dialog showing what was read)."""
    return any(int(i) > t.sent_at for i in page.find(**conditions))


def send_now(send: Callable[[WsPage, SimpleNamespace], Send]) -> Prepare:
    async def prepare(page: WsPage, t: SimpleNamespace) -> Send:
        return send(page, t)
    return prepare


# ---- the rows --------------------------------------------------------------------------------------------------------

@dataclass
class Row:
    name: str
    path: str  # '{slug}' is the actor's board
    prepare: Prepare  # opens what the handler lives in; returns how to send the event
    done: Callable[[WsPage, SimpleNamespace], bool]  # what a user observes when it was allowed
    allowed: frozenset[str]
    reset: Callable[[SimpleNamespace], None] = lambda t: None
    before: Callable[[SimpleNamespace], None] = lambda t: None  # what must exist before the page opens


def placement(t: SimpleNamespace, worktree: str | None = None) -> CardPlacement | None:
    return read(lambda s: s.exec(select(CardPlacement).where(CardPlacement.worktree_id == (worktree or t.worktree),
                                                             CardPlacement.board_id == t.board)).first())


def get(model: Any, id_: str) -> Any:
    return read(lambda s: s.get(model, id_))


def count(model: Any, *where: Any) -> int:
    return len(read(lambda s: s.exec(select(model).where(*where)).all()))


def restore_card(t: SimpleNamespace) -> None:
    def put_back(session: Any) -> None:
        worktree = session.get(Worktree, t.worktree)
        worktree.archived = False
        found = session.exec(select(CardPlacement).where(CardPlacement.worktree_id == t.worktree)).first()
        if found is None:
            session.add(CardPlacement(board_id=t.board, worktree_id=t.worktree, x=0, y=100,
                                      updated_by=t.user_id))
    write(put_back)


def move_card_back(t: SimpleNamespace) -> None:
    def back(session: Any) -> None:
        found = session.exec(select(CardPlacement).where(CardPlacement.worktree_id == t.worktree)).one()
        found.x, found.zone_id = 0, None
    write(back)


def restore_zone(t: SimpleNamespace) -> None:
    def back(session: Any) -> None:
        zone = session.get(Zone, t.zone)
        if zone is None:
            session.add(Zone(id=t.zone, board_id=t.board, label='Review', x=600, y=0, w=500, h=400))
        else:
            zone.x, zone.label = 600, 'Review'
    write(back)


def set_attr(model: Any, id_attr: str, **values: Any) -> Callable[[SimpleNamespace], None]:
    def reset(t: SimpleNamespace) -> None:
        def apply(session: Any) -> None:
            row = session.get(model, getattr(t, id_attr))
            for name, value in values.items():
                setattr(row, name, value)
        write(apply)
    return reset


def other_level(t: SimpleNamespace) -> str:
    return 'prompt' if STATE[t.actor][2] == 'session' else 'session'


async def pick_level(page: WsPage, t: SimpleNamespace) -> Send:
    await card_dialog(page, t)
    select_ = page.one(label='Others may')
    index = ['view', 'session', 'prompt', 'all'].index(other_level(t))
    return lambda: page.fire(select_, 'update:modelValue', {'value': index, 'label': other_level(t)})


async def notes(page: WsPage, t: SimpleNamespace) -> Send:
    await card_dialog(page, t)
    await type_into(page, 'Notes', f'notes by {t.actor}')
    return click(page, button(page, 'Save notes and links'))


def in_card(label: str) -> Prepare:
    async def prepare(page: WsPage, t: SimpleNamespace) -> Send:
        await card_dialog(page, t)
        return click(page, button(page, label))
    return prepare


async def new_session(page: WsPage, t: SimpleNamespace) -> Send:
    await card_dialog(page, t)
    agent = await page.opened(click(page, button(page, 'New session')), label='Agent', tag='nicegui-select')
    shell = next(o for o in page.elements[agent]['props']['options'] if o['label'] == 'Shell')
    await page.fire(agent, 'update:modelValue', shell)
    await type_into(page, 'Prompt', 'true')
    return click(page, button(page, 'Start session'))


async def card_comment(page: WsPage, t: SimpleNamespace) -> Send:
    await card_dialog(page, t)
    return await editor_of(page, t, click(page, button(page, 'Comment')))  # the dialog's (the toolbar's is older)


async def canvas_comment(page: WsPage, t: SimpleNamespace) -> Send:
    return await editor_of(page, t, canvas(page, 'comment_at', {'x': -300, 'y': -300}))


def prompt_session(which: str) -> Prepare:
    async def prepare(page: WsPage, t: SimpleNamespace) -> Send:
        await session_panel(page, getattr(t, which))
        await page.fire(page.one(prop=('placeholder', PROMPT_BOX)), 'update:value', f'true prompted-by-{t.actor}')
        return click(page, button(page, 'Send'))
    return prepare


def prompted(which: str) -> Callable[[WsPage, SimpleNamespace], bool]:
    return lambda page, t: count(SessionTurn, SessionTurn.session_id == getattr(t, which),
                                 SessionTurn.prompt == f'true prompted-by-{t.actor}') > 0


def a_running_session_with_a_queued_prompt(t: SimpleNamespace) -> None:
    """Alice's other session really running (a long `sleep`, started by the app's watchdog within seconds: the
    prompt is queued behind the app's back) with a second prompt waiting behind it."""
    write(lambda s: s.add(SessionTurn(session_id=t.alices_idle, created_by=t.alice, prompt='sleep 600')))
    wait_until(lambda: get(AgentSession, t.alices_idle).pid is not None, 'the sleep started')  # its process is there
    write(lambda s: s.add(SessionTurn(session_id=t.alices_idle, created_by=t.alice, prompt=f'waiting-{t.actor}')))


def no_run_left(t: SimpleNamespace) -> None:
    """Whatever the row did, Alice's session ends idle with nothing queued: its run's process group is killed (a run
    is `running` from its claim, and has a pid only once its process started)."""
    write(lambda s: [setattr(turn, 'status', 'stopped') for turn in s.exec(select(SessionTurn).where(
        SessionTurn.session_id == t.alices_idle, SessionTurn.status == 'queued'))])
    wait_until(lambda: (agent := get(AgentSession, t.alices_idle)).pid is not None or agent.status != 'running',
               'the run started or ended')
    pid = get(AgentSession, t.alices_idle).pid
    if pid:
        with contextlib.suppress(ProcessLookupError):
            os.killpg(pid, signal.SIGKILL)
    wait_until(lambda: get(AgentSession, t.alices_idle).status != 'running', 'the sleep ended')


def wait_until(condition: Callable[[], bool], what: str, timeout: float = 60) -> None:
    deadline = time.monotonic() + timeout
    while not condition():
        if time.monotonic() > deadline:
            raise TimeoutError(f'waited {timeout:.0f} s for: {what}')
        time.sleep(0.2)


async def stop_session(page: WsPage, t: SimpleNamespace) -> Send:
    await asyncio.to_thread(a_running_session_with_a_queued_prompt, t)
    await session_panel(page, t.alices_idle)
    stop = button(page, 'Stop')  # shown (and so taking clicks) once the panel's status says running
    await page.wait_for(lambda: 'hidden' not in page.elements[stop].get('class', []))
    return click(page, stop)


async def follow(page: WsPage, t: SimpleNamespace) -> Send:
    await session_panel(page, t.alices)
    switch = page.one(text='Follow')
    return lambda: page.fire(switch, 'update:modelValue', True)


def an_approval_request(t: SimpleNamespace) -> None:
    """A request of Alice's session waiting for an answer (as Claude Code's permission prompt leaves it)."""
    def make(session: Any) -> None:
        approval = Approval(session_id=t.alices, tool='Bash', input={'command': f'touch by-{t.actor}'},
                            expires_at=utcnow() + timedelta(hours=1))
        session.add(approval)
        session.flush()
        t.approval = approval.id
    write(make)


async def allow_request(page: WsPage, t: SimpleNamespace) -> Send:
    await session_panel(page, t.alices)
    return click(page, await page.wait_element(label='Allow', tag='q-btn'))


async def session_variables(page: WsPage, t: SimpleNamespace) -> Send:
    await session_panel(page, t.own)
    save = await page.opened(click(page, button(page, 'Variables')), label='Save', tag='q-btn')
    await page.fire(page.one(label='This session gets'), 'update:modelValue', [{'value': 0, 'label': 'DEPLOY_TOKEN'}])
    return click(page, save)


async def zone_dialog(page: WsPage, t: SimpleNamespace) -> None:
    await page.opened(canvas(page, 'zone_click', {'id': t.zone}), label='Save', tag='q-btn')


async def zone_save(page: WsPage, t: SimpleNamespace) -> Send:
    await zone_dialog(page, t)
    await type_into(page, 'Label', f'Zone of {t.actor}')
    return click(page, button(page, 'Save'))


async def zone_delete(page: WsPage, t: SimpleNamespace) -> Send:
    await zone_dialog(page, t)
    return click(page, button(page, 'Delete'))


async def new_worktree(page: WsPage, t: SimpleNamespace) -> Send:
    create = await page.opened(click(page, button(page, 'Worktree')), label='Create worktree', tag='q-btn')
    await type_into(page, 'Name (e.g. auth-fix)', f'new-{t.actor}'.replace('_', '-'))
    return click(page, create)


async def sharing(page: WsPage, t: SimpleNamespace) -> Send:
    sharing_button = page.one(prop=('icon', 'group'), tag='q-btn')
    save = await page.opened(click(page, sharing_button), label='Save', tag='q-btn')
    await page.fire(page.one(text='Private board'), 'update:modelValue', True)
    return click(page, save)


async def reply(page: WsPage, t: SimpleNamespace) -> Send:
    return await editor_of(page, t, click(page, page.one(label='Reply', tag='q-btn')))


async def edit(page: WsPage, t: SimpleNamespace) -> Send:
    return await editor_of(page, t, click(page, menu_item(page, 'Edit')))


async def delete_comment(page: WsPage, t: SimpleNamespace) -> Send:
    return await dialog_button(page, click(page, menu_item(page, 'Delete')), 'Delete')


async def audio(page: WsPage, t: SimpleNamespace) -> Send:
    """Through the avatar menu: Settings, then Audio in the rail."""
    await page.opened(click(page, menu_item(page, 'Settings')), label='Save name', tag='q-btn')
    save = await page.opened(click(page, menu_item(page, 'Audio')), label='Save', tag='q-btn')
    await page.fire(page.one(text='Play chimes'), 'update:modelValue', True)
    return click(page, save)


async def rename_self(page: WsPage, t: SimpleNamespace) -> Send:
    await type_into(page, 'Display name', f'Renamed {t.actor}')
    return click(page, button(page, 'Save name'))


async def upload_avatar(page: WsPage, t: SimpleNamespace) -> Send:
    url = next(e['props']['url'] for e in page.elements.values() if '/upload/' in str(e.get('props', {}).get('url')))

    async def send() -> None:
        async with httpx.AsyncClient(timeout=30) as http:
            await http.post(f'{page.server.url}{url}', files={'file': ('me.png', b'\x89PNG\r\n\x1a\n' + b'0' * 64)},
                            cookies={'session': page.cookie})
    return send


async def create_api_key(page: WsPage, t: SimpleNamespace) -> Send:
    await type_into(page, 'Name', f'key of {t.actor}')
    return click(page, button(page, 'Create key'))


async def revoke_api_key(page: WsPage, t: SimpleNamespace) -> Send:
    await page.wait_element(label='Revoke', tag='q-btn')
    return click(page, button(page, 'Revoke'))


def with_a_key(t: SimpleNamespace) -> None:
    """The actor's own live key, made before its page opens."""
    def make(session: Any) -> None:
        session.add(ApiKey(user_id=t.user_id, name=f'old key of {t.actor}', prefix=t.actor.replace('_', '')[:8],
                           key_hash='0' * 64))
    write(make)


MATRIX_MCP = 'matrix-oauth'


def with_an_mcp_grant(t: SimpleNamespace) -> None:
    """The actor's own grant for the matrix's OAuth MCP server."""
    def make(session: Any) -> None:
        server = session.exec(select(McpServer).where(McpServer.name == MATRIX_MCP)).one()
        client = session.exec(select(McpClient).where(McpClient.server_id == server.id)).one()
        session.add(McpGrant(user_id=t.user_id, server_id=server.id, client_row=client.id,
                             access_token='v1:never-opened'))  # no revocation endpoint: Disconnect only deletes
    write(make)


def matrix_mcp_server(session: Any) -> None:
    """An OAuth MCP server whose authorization server offers no revocation, with the app's client for it."""
    server = McpServer(name=MATRIX_MCP, transport='http', url='https://93.184.216.34/mcp', auth='oauth')
    session.add(server)
    session.flush()
    session.add(McpClient(server_id=server.id, issuer='https://93.184.216.34', client_id='matrix',
                          redirect_uri='https://app.example/mcp-oauth/callback',
                          metadata_={'token_endpoint': 'https://93.184.216.34/token'}))


async def disconnect_mcp(page: WsPage, t: SimpleNamespace) -> Send:
    await page.wait_element(label='Disconnect', tag='q-btn')
    return click(page, button(page, 'Disconnect'))


async def session_mcp(page: WsPage, t: SimpleNamespace) -> Send:
    await session_panel(page, t.own)
    save = await page.opened(click(page, button(page, 'MCP')), label='Save', tag='q-btn')
    await page.fire(page.one(label='This session uses'), 'update:modelValue', [{'value': 0, 'label': MATRIX_MCP}])
    return click(page, save)


async def add_mcp_server(page: WsPage, t: SimpleNamespace) -> Send:
    save = await page.opened(click(page, button(page, 'Add server')), label='Save', tag='q-btn')
    await type_into(page, 'Server name', f'mcp-{t.actor}')
    await type_into(page, 'URL', 'https://93.184.216.34/mcp')
    return click(page, save)


async def codex_defaults(page: WsPage, t: SimpleNamespace) -> Send:
    await type_into(page, 'Default model', 'gpt-5.5')
    return click(page, button(page, 'Save'))


def api_keys_of(t: SimpleNamespace, *where: Any) -> int:
    return count(ApiKey, ApiKey.user_id == t.user_id, *where)


def delete_rows(model: Any, **match: str) -> Callable[[SimpleNamespace], None]:
    def reset(t: SimpleNamespace) -> None:
        write(lambda s: [s.delete(r) for r in s.exec(select(model).where(
            *(getattr(model, column) == getattr(t, attr) for column, attr in match.items())))])
    return reset


def no_avatar(t: SimpleNamespace) -> None:
    set_attr(User, 'user_id', avatar_id=None)(t)
    delete_rows(UserAvatar, user_id='user_id')(t)


def restore_spare_board(t: SimpleNamespace) -> None:
    def back(session: Any) -> None:
        board = session.get(Board, t.spare_board)
        if board is None:
            session.add(Board(id=t.spare_board, name=f'Spare {t.actor}', slug=f'spare-{t.actor}-again',
                              created_by=t.alice))
        else:
            board.name = f'Spare {t.actor}'
    write(back)


def chime_on(page: WsPage, t: SimpleNamespace) -> bool:
    return bool(((get(User, t.user_id).preferences or {}).get('chime') or {}).get('enabled'))


async def new_board(page: WsPage, t: SimpleNamespace) -> Send:
    create = await page.opened(click(page, button(page, 'New board')), label='Create', tag='q-btn')
    await type_into(page, 'Name', f'Fresh board of {t.actor}')
    return click(page, create)


async def rename_board(page: WsPage, t: SimpleNamespace) -> Send:
    item = menu_item(page, 'Rename', page.one(text=f'Spare {t.actor}'))
    save = await page.opened(click(page, item), label='Save', tag='q-btn')
    await type_into(page, 'Name', f'Renamed by {t.actor}')
    return click(page, save)


async def delete_board(page: WsPage, t: SimpleNamespace) -> Send:
    item = menu_item(page, 'Delete', page.one(text=f'Spare {t.actor}'))
    return await dialog_button(page, click(page, item), 'Delete')


async def register(page: WsPage, t: SimpleNamespace) -> Send:
    await type_into(page, 'Local path on the server, or a path/URL to clone', str(t.new_repo))
    return click(page, button(page, 'Register'))


async def spare(page: WsPage, t: SimpleNamespace) -> str:
    """The spare worktree's row on the repos page (its name label), once the list has loaded."""
    return await page.wait_element(text=t.spare_name)


async def place_spare(page: WsPage, t: SimpleNamespace) -> Send:
    return click(page, menu_item(page, f'Board {t.actor}', await spare(page, t)))


async def archive_spare(page: WsPage, t: SimpleNamespace) -> Send:
    return click(page, after(page, await spare(page, t), label='Archive', tag='q-btn'))


async def delete_spare(page: WsPage, t: SimpleNamespace) -> Send:
    row_button = after(page, await spare(page, t), label='Delete', tag='q-btn')
    return await dialog_button(page, click(page, row_button), 'Delete')


async def teammate(page: WsPage, t: SimpleNamespace) -> str:
    return await page.wait_element(text=f'mate-{t.actor}@example.com')


async def change_role(page: WsPage, t: SimpleNamespace) -> Send:
    role = after(page, await teammate(page, t), event='update:modelValue', tag='nicegui-select')
    viewer = next(o for o in page.elements[role]['props']['options'] if o['label'] == 'viewer')
    return lambda: page.fire(role, 'update:modelValue', viewer)


async def deactivate(page: WsPage, t: SimpleNamespace) -> Send:
    return click(page, after(page, await teammate(page, t), label='Deactivate', tag='q-btn'))


async def create_account(page: WsPage, t: SimpleNamespace) -> Send:
    await type_into(page, 'Name', f'Made by {t.actor}')
    await type_into(page, 'Email', f'made-by-{t.actor}@example.com')
    await type_into(page, 'Initial password', PASSWORD)
    return click(page, button(page, 'Create account'))


async def trigger_preview(page: WsPage, t: SimpleNamespace) -> Send:
    await zone_dialog(page, t)
    return lambda: type_into(page, TEMPLATE_BOX, f'Preview of {{{{ worktree.name }}}} for {t.actor}')


def previewed(page: WsPage, t: SimpleNamespace) -> bool:
    return bool(page.find(text=f'Preview of {get(Worktree, t.worktree).name} for {t.actor}'))


async def picker(page: WsPage, t: SimpleNamespace) -> Send:
    """Drop the card into the trigger zone (`show_picker`): the picker asks; sending is answering it (a new session)."""
    run = await page.opened(canvas(page, 'card_move', {'id': t.worktree, 'x': 1400, 'y': 100}),
                            label='Run', tag='q-btn')
    return click(page, run)


def no_picker_left(t: SimpleNamespace) -> None:
    """The card back out of the zone, and an unanswered picker cancelled (it would ask again on the next page)."""
    move_card_back(t)
    write(lambda s: [setattr(f, 'status', 'cancelled') for f in s.exec(select(ZoneFiring).where(
        ZoneFiring.user_id == t.user_id, ZoneFiring.status == 'picking'))])


def history_shown(page: WsPage, t: SimpleNamespace) -> bool:
    return built(page, t, text='Recent firings')


def inbox_menu(page: WsPage) -> Send:
    return lambda: page.fire(page.one(event='beforeShow'), 'beforeShow')


def inbox_shown(page: WsPage, t: SimpleNamespace) -> bool:
    """The actor's own entry is listed; Alice's never is, for anyone (an error in the matrix if it is)."""
    if page.find(text=ALICES_ENTRY):
        raise AssertionError("Alice's inbox entry reached this page")
    return built(page, t, text=f'For {t.actor}')


async def mark_all_read(page: WsPage, t: SimpleNamespace) -> Send:
    await page.opened(inbox_menu(page), text=f'For {t.actor}')
    return click(page, page.one(label='Mark all read', tag='q-btn'))


def marked_read(page: WsPage, t: SimpleNamespace) -> bool:
    """The actor's own entry is read; Alice's stays unread whoever marks all read."""
    if get(Notification, t.alices_entry).read_at is not None:
        raise AssertionError("Alice's inbox entry was marked read")
    return get(Notification, t.inbox).read_at is not None


def a_channel(t: SimpleNamespace, linked: bool = False) -> None:
    """The actor's chat channel `Chan <actor>` on its worktree (secrets are never opened by these rows); `linked`:
    the actor's own chat account L<actor> on it."""
    def make(session: Any) -> None:
        channel = session.exec(select(GatewayChannel).where(GatewayChannel.name == f'Chan {t.actor}')).first()
        if channel is None:
            channel = GatewayChannel(name=f'Chan {t.actor}', signing_secret='x', bot_token='x', board_id=t.board,
                                     worktree_id=t.worktree, runtime='shell', created_by=t.alice)
            session.add(channel)
            session.flush()
        if linked:
            session.add(GatewayIdentity(channel_id=channel.id, external_id=f'L{t.actor}', user_id=t.user_id))
    write(make)


def no_channel(t: SimpleNamespace) -> None:
    write(lambda s: [s.delete(c) for c in s.exec(select(GatewayChannel).where(
        col(GatewayChannel.name).in_([f'Chan {t.actor}', f'Channel of {t.actor}'])))])


async def new_channel(page: WsPage, t: SimpleNamespace) -> Send:
    save = await page.opened(click(page, button(page, 'New channel')), label='Save', tag='q-btn')
    await type_into(page, 'Channel name', f'Channel of {t.actor}')
    target = page.one(label='Board · worktree its sessions start in')
    option = next(o for o in page.elements[target]['props']['options']
                  if o['label'] == f'Board {t.actor} · ' + f'wt-{t.actor}'.replace('_', '-'))
    await page.fire(target, 'update:modelValue', option)
    await type_into(page, 'Signing secret', f'secret of {t.actor}')
    await type_into(page, 'Bot token (xoxb-…)', f'xoxb-{t.actor}')
    return click(page, save)


async def map_person(page: WsPage, t: SimpleNamespace) -> Send:
    anchor = await page.wait_element(text=f'Chan {t.actor}')
    await page.fire(after(page, anchor, label='External user id', event='update:value'), 'update:value',
                    f'U{t.actor}')
    person = after(page, anchor, label='Agor user', tag='nicegui-select')
    option = next(o for o in page.elements[person]['props']['options'] if o['label'].startswith(f'{t.name} ('))
    await page.fire(person, 'update:modelValue', option)
    return click(page, after(page, anchor, label='Link', tag='q-btn'))


async def delete_channel(page: WsPage, t: SimpleNamespace) -> Send:
    anchor = await page.wait_element(text=f'Chan {t.actor}')
    return await dialog_button(page, click(page, after(page, anchor, label='Delete', tag='q-btn')), 'Delete')


async def unlink_chat_account(page: WsPage, t: SimpleNamespace) -> Send:
    return click(page, await page.wait_element(label='Unlink', tag='q-btn'))


BOARD = '/b/{slug}'
ROWS = [
    Row('drop a card (canvas card_move)', BOARD,
        send_now(lambda page, t: canvas(page, 'card_move', {'id': t.worktree, 'x': 40, 'y': 140})),
        lambda page, t: placement(t).x == 40, MEMBERS, move_card_back),
    Row('move a zone (canvas zone_change)', BOARD,
        send_now(lambda page, t: canvas(page, 'zone_change', {'id': t.zone, 'x': 650})),
        lambda page, t: get(Zone, t.zone).x == 650, MEMBERS, restore_zone),
    Row('open a card (canvas card_click)', BOARD,
        send_now(lambda page, t: canvas(page, 'card_click', {'id': t.worktree})),
        lambda page, t: built(page, t, label='Others may'), READERS),
    Row('card: Others may', BOARD, pick_level,
        lambda page, t: get(Worktree, t.worktree).others_can == other_level(t), OWNER_ADMIN),
    Row('card: Save notes and links', BOARD, notes,
        lambda page, t: get(Worktree, t.worktree).notes == f'notes by {t.actor}', LEVEL_ALL,
        set_attr(Worktree, 'worktree', notes='')),
    Row('card: New session → Start session', BOARD, new_session,
        lambda page, t: count(AgentSession, AgentSession.worktree_id == t.worktree,
                              AgentSession.created_by == t.user_id) > 1, LEVEL_SESSION),
    Row('card: Comment → submit', BOARD, card_comment,
        lambda page, t: count(Comment, Comment.author_id == t.user_id, Comment.target_type == 'worktree') > 0,
        MEMBERS, lambda t: write(lambda s: [s.delete(c) for c in s.exec(select(Comment).where(
            Comment.author_id == t.user_id))])),
    Row('card: Remove from board', BOARD, in_card('Remove from board'),
        lambda page, t: placement(t) is None, LEVEL_ALL, restore_card),
    Row('card: Archive', BOARD, in_card('Archive'),
        lambda page, t: get(Worktree, t.worktree).archived, LEVEL_ALL, restore_card),
    Row('comment on the canvas (comment_at → submit)', BOARD, canvas_comment,
        lambda page, t: count(Comment, Comment.author_id == t.user_id, Comment.target_type == 'board') > 0,
        MEMBERS, lambda t: write(lambda s: [s.delete(c) for c in s.exec(select(Comment).where(
            Comment.author_id == t.user_id))])),
    Row("open Alice's session (canvas session_click)", BOARD,
        send_now(lambda page, t: canvas(page, 'session_click', {'id': t.alices})),
        lambda page, t: built(page, t, prop=('placeholder', PROMPT_BOX)), READERS),
    Row("session: Send to Alice's session", BOARD, prompt_session('alices'), prompted('alices'), LEVEL_PROMPT),
    Row('session: Send to your own session', BOARD, prompt_session('own'), prompted('own'), LEVEL_SESSION),
    Row("session: Stop Alice's session", BOARD, stop_session,
        lambda page, t: count(SessionTurn, SessionTurn.prompt == f'waiting-{t.actor}',
                              SessionTurn.status == 'stopped') > 0, LEVEL_PROMPT, no_run_left),
    Row("session: Follow Alice's session", BOARD, follow,
        lambda page, t: count(SessionFollow, SessionFollow.user_id == t.user_id,
                              SessionFollow.session_id == t.alices) > 0, READERS,
        lambda t: write(lambda s: [s.delete(f) for f in s.exec(select(SessionFollow).where(
            SessionFollow.user_id == t.user_id))])),
    Row("session: Allow a request of Alice's session", BOARD, allow_request,
        lambda page, t: get(Approval, t.approval).status == 'allowed', LEVEL_PROMPT,
        lambda t: write(lambda s: s.execute(delete(Approval).where(col(Approval.session_id) == t.alices))),
        before=an_approval_request),
    Row('session: Variables → Save (own session)', BOARD, session_variables,
        lambda page, t: count(SessionEnvSelection, SessionEnvSelection.session_id == t.own) > 0, MEMBERS,
        lambda t: write(lambda s: s.execute(delete(SessionEnvSelection).where(
            col(SessionEnvSelection.session_id) == t.own)))),
    Row('session: MCP → Save (own session)', BOARD, session_mcp,
        lambda page, t: count(SessionMcpServer, SessionMcpServer.session_id == t.own) > 0, MEMBERS,
        lambda t: write(lambda s: s.execute(delete(SessionMcpServer).where(
            col(SessionMcpServer.session_id) == t.own)))),
    Row('zone dialog: Save', BOARD, zone_save,
        lambda page, t: get(Zone, t.zone).label == f'Zone of {t.actor}', MEMBERS, restore_zone),
    Row('zone dialog: Delete', BOARD, zone_delete,
        lambda page, t: get(Zone, t.zone) is None, MEMBERS, restore_zone),
    Row('toolbar: Zone', BOARD, send_now(lambda page, t: click(page, button(page, 'Zone'))),
        lambda page, t: count(Zone, Zone.board_id == t.board) > 2, MEMBERS,
        lambda t: write(lambda s: [s.delete(z) for z in s.exec(select(Zone).where(
            Zone.board_id == t.board, col(Zone.id).not_in([t.zone, t.trigger_zone])))])),
    Row('toolbar: Worktree → Create worktree', BOARD, new_worktree,
        lambda page, t: count(Worktree, Worktree.name == f'new-{t.actor}'.replace('_', '-')) > 0, MEMBERS),
    Row('board: Sharing and permissions → Save', BOARD, sharing,
        lambda page, t: get(Board, t.board).private, ADMIN, set_attr(Board, 'board', private=False)),
    Row("comments: Reply to Alice's thread", BOARD, reply,
        lambda page, t: count(Comment, Comment.author_id == t.user_id, Comment.parent_id == t.thread) > 0,
        MEMBERS, lambda t: write(lambda s: [s.delete(c) for c in s.exec(select(Comment).where(
            Comment.author_id == t.user_id))])),
    Row("comments: Resolve Alice's thread", BOARD, send_now(lambda page, t: click(page, button(page, 'Resolve'))),
        lambda page, t: get(Comment, t.thread).resolved, MEMBERS, set_attr(Comment, 'thread', resolved=False)),
    Row("comments: react to Alice's comment", BOARD, send_now(lambda page, t: click(page, button(page, '👍'))),
        lambda page, t: count(CommentReaction, CommentReaction.user_id == t.user_id) > 0, MEMBERS,
        lambda t: write(lambda s: [s.delete(r) for r in s.exec(select(CommentReaction).where(
            CommentReaction.user_id == t.user_id))])),
    Row("comments: Edit Alice's comment", BOARD, edit,
        lambda page, t: get(Comment, t.thread).body == f'said by {t.actor}', ADMIN,
        set_attr(Comment, 'thread', body='Thread of Alice', edited=False)),
    Row("comments: Delete Alice's comment", BOARD, delete_comment,
        lambda page, t: get(Comment, t.thread).deleted, ADMIN, set_attr(Comment, 'thread', deleted=False)),
    Row('header: Settings → Audio → Save', BOARD, audio, chime_on, READERS,
        set_attr(User, 'user_id', preferences={})),
    Row('settings: General → Save name', '/?settings=general', rename_self,
        lambda page, t: get(User, t.user_id).name == f'Renamed {t.actor}', READERS,
        lambda t: set_attr(User, 'user_id', name=t.actor.replace('_', ' ').title() if t.actor != 'owner' else 'Bob')(t)),
    Row('settings: General → upload avatar', '/?settings=general', upload_avatar,
        lambda page, t: get(User, t.user_id).avatar_id is not None, READERS, no_avatar),
    Row('settings: Personal API Keys → Create key', '/?settings=personal-api-keys', create_api_key,
        lambda page, t: api_keys_of(t, ApiKey.name == f'key of {t.actor}') > 0, READERS,
        delete_rows(ApiKey, user_id='user_id')),
    Row('settings: Personal API Keys → Revoke', '/?settings=personal-api-keys', revoke_api_key,
        lambda page, t: api_keys_of(t, col(ApiKey.revoked_at).is_not(None)) > 0, READERS,
        delete_rows(ApiKey, user_id='user_id'), before=with_a_key),
    Row('settings: Codex → Save', '/?settings=codex', codex_defaults,
        lambda page, t: count(RuntimeSetting, RuntimeSetting.user_id == t.user_id) > 0, MEMBERS,
        delete_rows(RuntimeSetting, user_id='user_id')),
    Row('settings: MCP authorizations → Disconnect', '/?settings=mcp-authorizations', disconnect_mcp,
        lambda page, t: count(McpGrant, McpGrant.user_id == t.user_id) == 0, READERS,
        delete_rows(McpGrant, user_id='user_id'), before=with_an_mcp_grant),
    Row('boards: New board → Create', '/', new_board,
        lambda page, t: count(Board, Board.name == f'Fresh board of {t.actor}') > 0, MEMBERS),
    Row('boards: Rename → Save', '/', rename_board,
        lambda page, t: get(Board, t.spare_board).name == f'Renamed by {t.actor}', MEMBERS, restore_spare_board),
    Row('boards: Delete → Delete', '/', delete_board,
        lambda page, t: get(Board, t.spare_board) is None, ADMIN, restore_spare_board),
    Row('repos: Register', '/repos', register,
        lambda page, t: count(Repo, Repo.path == str(t.new_repo)) > 0, ADMIN),
    Row('repos: Place on board', '/repos', place_spare,
        lambda page, t: placement(t, t.spare) is not None, LEVEL_ALL),
    Row('repos: Archive', '/repos', archive_spare,
        lambda page, t: get(Worktree, t.spare).archived, LEVEL_ALL, set_attr(Worktree, 'spare', archived=False)),
    Row('repos: Delete → Delete', '/repos', delete_spare,
        lambda page, t: get(Worktree, t.spare) is None, LEVEL_ALL),
    Row('admin: change a role', '/admin', change_role,
        lambda page, t: get(User, t.teammate).role == 'viewer', ADMIN, set_attr(User, 'teammate', role='member')),
    Row('admin: Deactivate', '/admin', deactivate,
        lambda page, t: not get(User, t.teammate).active, ADMIN, set_attr(User, 'teammate', active=True)),
    Row('admin: Create account', '/admin', create_account,
        lambda page, t: count(User, User.email == f'made-by-{t.actor}@example.com') > 0, ADMIN),
    Row('admin: MCP servers → Add server → Save', '/admin', add_mcp_server,
        lambda page, t: count(McpServer, McpServer.name == f'mcp-{t.actor}') > 0, ADMIN),
    Row('admin: Create invite link', '/admin', send_now(lambda page, t: click(page, button(page, 'Create invite link'))),
        lambda page, t: count(Invite, Invite.created_by == t.user_id) > 0, ADMIN),
    Row('zone dialog: trigger preview', BOARD, trigger_preview, previewed, MEMBERS),
    Row('zone trigger: answer the picker (new session)', BOARD, picker,
        lambda page, t: count(ZoneFiring, ZoneFiring.user_id == t.user_id, ZoneFiring.status == 'started') > 0,
        LEVEL_SESSION, no_picker_left),  # after 'New session' (it counts the actor's sessions)
    Row('zone dialog: recent firings (history)', BOARD,
        send_now(lambda page, t: canvas(page, 'zone_click', {'id': t.trigger_zone})), history_shown, READERS),
    Row('header: open the inbox', '/', send_now(lambda page, t: inbox_menu(page)), inbox_shown, READERS),
    Row('inbox: Mark all read', '/', mark_all_read, marked_read, READERS,
        set_attr(Notification, 'inbox', read_at=None)),
    Row('admin: Chat gateway → New channel → Save', '/admin', new_channel,
        lambda page, t: count(GatewayChannel, GatewayChannel.name == f'Channel of {t.actor}') > 0, ADMIN, no_channel),
    Row('admin: Chat gateway → Link a person', '/admin', map_person,
        lambda page, t: count(GatewayIdentity, GatewayIdentity.external_id == f'U{t.actor}') > 0, ADMIN, no_channel,
        before=a_channel),
    Row('admin: Chat gateway → Delete → Delete', '/admin', delete_channel,
        lambda page, t: count(GatewayChannel, GatewayChannel.name == f'Chan {t.actor}') == 0, ADMIN, no_channel,
        before=a_channel),
    Row('settings: Chat accounts → Make a code', '/?settings=chat-accounts',
        send_now(lambda page, t: click(page, button(page, 'Make a code'))),
        lambda page, t: count(GatewayLinkCode, GatewayLinkCode.user_id == t.user_id) > 0, READERS,
        delete_rows(GatewayLinkCode, user_id='user_id')),
    Row('settings: Chat accounts → Unlink', '/?settings=chat-accounts', unlink_chat_account,
        lambda page, t: count(GatewayIdentity, GatewayIdentity.external_id == f'L{t.actor}') == 0, READERS,
        no_channel, before=lambda t: a_channel(t, linked=True)),
]


# ---- running the matrix ----------------------------------------------------------------------------------------------

async def outcome(page: WsPage, row: Row, t: SimpleNamespace, seen: int, timeout: float = 45) -> bool:
    """Done (the row's observation holds), or refused (a warning came and it does not hold). The database is read
    in a thread: this loop answers the pages' JavaScript requests meanwhile."""
    deadline = time.monotonic() + timeout
    while not await asyncio.to_thread(row.done, page, t):
        if len(page.warnings) > seen:
            return await asyncio.to_thread(row.done, page, t)
        if time.monotonic() > deadline:
            raise TimeoutError('neither done nor refused')
        await page.changed(0.25)
    return True


async def open_tab(page: WsPage, http: httpx.AsyncClient, path: str, attempts: int = 3) -> None:
    """A loaded machine can take longer than NiceGUI's response timeout to build a page (HTTP 500): try again."""
    for attempt in range(attempts):
        try:
            await page.open(http, path)
            return
        except AssertionError:
            if attempt == attempts - 1:
                raise


async def attempt_row(world: SimpleNamespace, t: SimpleNamespace, row: Row, http: httpx.AsyncClient,
                      said: dict[str, list[str]]) -> Any:
    await asyncio.to_thread(can_do_everything, t)
    await asyncio.to_thread(row.before, t)
    page = WsPage(world.server, t.cookie)
    t.sent = False
    try:
        await open_tab(page, http, row.path.format(slug=t.slug))
        send = await row.prepare(page, t)
        await asyncio.to_thread(as_it_really_is, t)
        seen, t.sent_at = len(page.warnings), max(map(int, page.elements))
        t.sent = True
        await send()
        result: Any = await outcome(page, row, t, seen)
        if not result:
            said[row.name] = page.warnings[seen:]
    except Exception as error:  # noqa: BLE001 (reported in the matrix, with the row and actor)
        result = f'{type(error).__name__}: {error}' + ('' if t.sent else f' ({what_it_shows(page)})')
    await page.close()
    try:
        await asyncio.to_thread(row.reset, t)
    except Exception as error:  # noqa: BLE001
        result = f'reset failed: {type(error).__name__}: {error}'
    return result


def what_it_shows(page: WsPage) -> str:
    """Why a control was missing before the event was sent: the page's notices, navigations and first texts."""
    texts = [e['text'] for e in page.elements.values() if e.get('text')][:12]
    return f'closed={page.closed} notices={page.notices} navigations={page.navigations} texts={texts}'


async def drive(world: SimpleNamespace, t: SimpleNamespace, rows: list[Row],
                http: httpx.AsyncClient) -> tuple[dict[str, Any], dict[str, list[str]]]:
    """Every row as this actor, each in a fresh tab: the outcome is True (done), False (refused: a notice, and
    nothing stored) or what went wrong; and what the refusals said."""
    outcomes: dict[str, Any] = {}
    said: dict[str, list[str]] = {}
    for row in rows:
        for _ in range(2):  # once more when a loaded machine's timeout came before the event was sent; never after:
            outcomes[row.name] = await attempt_row(world, t, row, http, said)  # the event may still be on its way,
            if isinstance(outcomes[row.name], bool) or t.sent:  # and the retry gives the account every right first
                break
    as_it_really_is(t)
    return outcomes, said


def test_every_handler_as_every_actor(world):
    """MATRIX_ROWS='<part of a row's name>|<another>' runs only those rows (to check a mutation quickly)."""
    parts = os.environ.get('MATRIX_ROWS', '').split('|')
    rows = [r for r in ROWS if any(part in r.name for part in parts)]

    async def everyone() -> list[tuple[dict[str, Any], dict[str, list[str]]]]:
        async with httpx.AsyncClient(timeout=30) as http:
            return await asyncio.gather(*(drive(world, world.targets[a], rows, http) for a in ACTORS))
    results = dict(zip(ACTORS, asyncio.run(everyone())))
    outcomes = {actor: result[0] for actor, result in results.items()}
    said = {actor: result[1] for actor, result in results.items()}
    wrong = []
    for row in rows:
        for actor in ACTORS:
            outcome = outcomes[actor][row.name]
            if outcome is not (actor in row.allowed):
                expected = 'allowed' if actor in row.allowed else 'refused'
                wrong.append(f'{row.name:50} {actor:12} expected {expected}, got {outcome} '
                             f'{said[actor].get(row.name, "")}')
    assert wrong == [], '\n' + '\n'.join(wrong)


# ---- routes ----------------------------------------------------------------------------------------------------------

EVERYONE = frozenset({'anonymous', *ACTORS})
# path, what a visitor it serves sees in the page, who it serves; everyone else is sent to /login (anonymous and the
# deactivated account) or gets the page without it (a role or a private board they lack)
ROUTES = [
    ('/', 'New board', MEMBERS),  # readers see the list; members also the button
    ('/', 'Board viewer', READERS),
    ('/b/board-viewer', 'Board viewer', READERS),
    ('/b/secret', 'Secret', OWNER_ADMIN),  # private: its creator (Alice), admins and its member Bob
    ('/repos', 'Repositories', READERS),
    ('/admin', 'Invite by link', ADMIN),
    ('/w/{viewer_worktree}/terminal', 'wt-viewer', READERS),
    ('/w/{secret_worktree}/terminal', 'secret-wt', OWNER_ADMIN),
    ('/login', 'Welcome back.', EVERYONE),
    ('/invite/not-a-token', 'Invite link', EVERYONE),
    ('/healthz', 'ok', EVERYONE),
    ('/sounds/bell.wav', 'RIFF', EVERYONE),
]
REDIRECTS = [('/setup', '/login'), ('/login/complete?token=forged', '/login'), ('/logout', '/login')]


def test_routes(world):
    for t in world.targets.values():
        as_it_really_is(t)
    secret = boards.create_board(world.alice, 'Secret')
    boards.set_access(world.alice, secret.id, private=True, members=[world.bob.id], others_can='session')
    with pytest.MonkeyPatch.context() as patch:
        patch.setenv('AGOR_REPO_ROOTS', str(Path(world.targets['viewer'].new_repo).parent))
        settings = load_settings(data_dir=str(world.server.data_dir))
    worktree = repos.create_worktree(settings, world.alice, world.targets['viewer'].repo, 'secret-wt')
    boards.place_card(world.alice, secret.id, worktree.id, 0, 0)
    cookies = {actor: t.cookie for actor, t in world.targets.items()}
    cookies['anonymous'] = login_cookie(world.server, None)
    ids = {'viewer_worktree': world.targets['viewer'].worktree, 'secret_worktree': worktree.id}
    served: dict[tuple[str, str], set[str]] = {}
    with httpx.Client(base_url=world.server.url, timeout=30) as http:
        for path, shows, _ in ROUTES:
            for actor, cookie in cookies.items():
                response = http.get(path.format(**ids), cookies={'session': cookie}, follow_redirects=False)
                if response.status_code in {302, 303, 307}:
                    assert response.headers['location'].startswith('/login'), (path, actor)
                    continue
                assert response.status_code == 200, (path, actor, response.status_code)
                if shows in response.text:
                    served.setdefault((path, shows), set()).add(actor)
        for path, target in REDIRECTS:  # the same for everyone (a logout with a login of its own)
            for actor in cookies:
                cookie = login_cookie(world.server, world.targets[actor].user_id if actor in world.targets else None)
                response = http.get(path, cookies={'session': cookie}, follow_redirects=False)
                assert (response.status_code, response.headers.get('location', '').split('?')[0]) \
                    in {(303, target), (307, target)}, (path, actor)
    assert {key: served.get(key[:2], set()) for key in [(p, s) for p, s, _ in ROUTES]} \
        == {(p, s): set(allowed) for p, s, allowed in ROUTES}


# ---- terminals -------------------------------------------------------------------------------------------------------
# A terminal's messages act on an attachment made when the xterm says `ready`: that open is checked as the user is
# then (stale tab: the page was built while the actor could do everything), and fixes whether this tmux client may
# type and size the window (a later change of level or role reaches it through `terminals.rights_changed` or the
# page's closing, tested in test_permissions.py and test_acting_user.py).

TERMINAL = {'open': READERS, 'type': LEVEL_SESSION, 'size the window': LEVEL_SESSION}


class Xterm:
    """The xterm of a terminal page, sending what xterm.js sends."""

    def __init__(self, page: WsPage) -> None:
        self.page, self.id = page, page.one(event='ready')
        self.seq = 0

    async def ready(self, cols: int, rows: int) -> None:
        self.seq += 1
        await self.page.fire(self.id, 'ready', {'cols': cols, 'rows': rows, 'seq': self.seq})

    async def resize(self, cols: int, rows: int) -> None:
        self.seq += 1
        await self.page.fire(self.id, 'resize', {'cols': cols, 'rows': rows, 'seq': self.seq})

    async def type(self, text: str) -> None:
        await self.page.fire(self.id, 'data', text)

    def attached(self, name: str) -> bool:
        return any(e.get('text', '').startswith('Attached: ') and name in e['text']
                   for e in self.page.elements.values())

    def refused(self) -> bool:
        return bool(self.page.find(label='Open again', tag='q-btn'))


def window_size(world: SimpleNamespace, worktree_id: str) -> str:
    socket = next(world.tmux_dir.glob(f'*-{worktree_id}/tmux'))
    done = subprocess.run(['tmux', '-S', str(socket), 'display', '-p', '-t', f'=v-{worktree_id}:',
                           '#{window_width}x#{window_height}'], capture_output=True, text=True, check=True)
    return done.stdout.strip()


async def terminal_as(world: SimpleNamespace, t: SimpleNamespace, http: httpx.AsyncClient) -> dict[str, Any]:
    """Bob (who owns the worktree) has its shell open at 100x30; the actor's stale tab opens it at 100x30, types a
    command, and makes its browser 30x8. Then Bob types a command and widens his to 101x30: once his command ran,
    the actor's (sent first) ran too if it was let through; the window is 30x8 (the smallest writer) if the actor's
    size counted, 101x30 if only Bob's did."""
    path, checkout = f'/w/{t.worktree}/terminal', Path(get(Worktree, t.worktree).path)
    host = WsPage(world.server, world.targets['owner'].cookie)
    page = WsPage(world.server, t.cookie)
    try:
        await open_tab(host, http, path)
        bobs = Xterm(host)
        await bobs.ready(100, 30)
        await host.wait_for(lambda: bobs.attached('Bob'), timeout=30)
        await asyncio.to_thread(can_do_everything, t)
        await open_tab(page, http, path)
        await asyncio.to_thread(as_it_really_is, t)
        xterm = Xterm(page)
        await xterm.ready(100, 30)
        await page.wait_for(lambda: xterm.attached(t.name) or xterm.refused(), timeout=30)
        outcome: dict[str, Any] = {'open': xterm.attached(t.name)}
        await xterm.type(f'touch typed-by-{t.actor}\r')
        await xterm.resize(30, 8)
        await bobs.type(f'touch after-{t.actor}\r')
        await bobs.resize(101, 30)
        await asyncio.to_thread(wait_until, lambda: (checkout / f'after-{t.actor}').exists(), 'Bob typed')
        outcome['type'] = (checkout / f'typed-by-{t.actor}').exists()
        await asyncio.to_thread(wait_until, lambda: window_size(world, t.worktree) in {'30x8', '101x30'},
                                'the window took a size')
        outcome['size the window'] = window_size(world, t.worktree) == '30x8'
        return outcome
    except Exception as error:  # noqa: BLE001 (reported in the matrix, with the actor)
        return dict.fromkeys(TERMINAL, f'{type(error).__name__}: {error}')
    finally:
        await page.close()
        await host.close()
        await asyncio.to_thread(as_it_really_is, t)


def test_terminal_messages_as_every_actor(world):
    """Open (`ready`), input (`data`) and `resize` of a worktree's terminal page, through the real websocket and a
    real tmux: watching takes a reader, typing and sizing the shared window take a member at `session` or more."""
    async def everyone() -> list[dict[str, Any]]:
        async with httpx.AsyncClient(timeout=30) as http:
            return await asyncio.gather(*(terminal_as(world, world.targets[a], http) for a in ACTORS))
    outcomes = dict(zip(ACTORS, asyncio.run(everyone())))
    assert {message: {a for a in ACTORS if outcomes[a][message] is True} for message in TERMINAL} == TERMINAL, \
        outcomes


# ---- presence --------------------------------------------------------------------------------------------------------
# Cursors (`pointer`) store nothing: they reach the other pages on the board through presence pushes. Alice makes the
# actor's board private (members: nobody) through her own page; from then on a viewer who no longer sees the board
# neither puts a cursor on it nor gets the cursors of those who do. (A deactivated account's pages close on the
# account change, test_acting_user.py; presence has no page of it to check.)

PRESENCE = {'cursor reaches the board': ADMIN, "sees Alice's cursor": ADMIN}


def cursor_shown(page: WsPage, x: float) -> bool:
    """A presence push carried a cursor at `x` to this page."""
    return any(code.startswith('agorPresence(') and re.search(f'"x":{x}[,}}]', code) for code in page.scripts)


async def presence_as(world: SimpleNamespace, t: SimpleNamespace, http: httpx.AsyncClient) -> dict[str, Any]:
    """The actor's cursor before (it arrives: the pipe works), then after the board went private; Alice's cursor
    after it. (A page never hears its own moves, so neither page can tell that the other's push went out without
    it: each check waits for its cursor, up to `_eventually`'s limit.)"""
    alices_cookie = await asyncio.to_thread(login_cookie, world.server, world.alice.id)
    alice, page = WsPage(world.server, alices_cookie), WsPage(world.server, t.cookie)
    path = BOARD.format(slug=t.slug)
    try:
        await open_tab(alice, http, path)
        await open_tab(page, http, path)
        await page.fire(page.one(event='pointer'), 'pointer', {'x': -7001.5, 'y': 0, 't': 1})
        await alice.wait_for(lambda: cursor_shown(alice, -7001.5))
        await (await sharing(alice, t))()
        await alice.wait_for(lambda: get(Board, t.board).private)
        await page.fire(page.one(event='pointer'), 'pointer', {'x': -7002.5, 'y': 0, 't': 2})
        reached = await _eventually(alice, lambda: cursor_shown(alice, -7002.5))
        await alice.fire(alice.one(event='pointer'), 'pointer', {'x': 7003.5, 'y': 0, 't': 1})
        return {'cursor reaches the board': reached,
                "sees Alice's cursor": await _eventually(page, lambda: cursor_shown(page, 7003.5))}
    except Exception as error:  # noqa: BLE001 (reported in the matrix, with the actor)
        return dict.fromkeys(PRESENCE, f'{type(error).__name__}: {error}')
    finally:
        await page.close()
        await alice.close()
        await asyncio.to_thread(set_attr(Board, 'board', private=False), t)


async def _eventually(page: WsPage, check: Callable[[], bool]) -> bool:
    """`check()` once it holds or the page navigated away (it lost the board); False after 10 s without either."""
    try:
        return bool(await page.wait_for(lambda: check() or page.navigations, timeout=10)) and check()
    except TimeoutError:
        return False


def test_presence_on_a_board_that_became_private_as_every_actor(world):
    actors = sorted(READERS)
    for t in world.targets.values():
        as_it_really_is(t)

    async def everyone() -> list[dict[str, Any]]:
        async with httpx.AsyncClient(timeout=30) as http:
            return await asyncio.gather(*(presence_as(world, world.targets[a], http) for a in actors))
    outcomes = dict(zip(actors, asyncio.run(everyone())))
    assert {what: {a for a in actors if outcomes[a][what] is True} for what in PRESENCE} == PRESENCE, outcomes
