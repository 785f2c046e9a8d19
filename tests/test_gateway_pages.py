"""The gateway's pages through NiceGUI's simulated user: an admin sets up a channel (its secrets never go back to the
browser) and maps a person; a user makes a link code in Settings → Chat accounts, sees the account it linked, and
unlinks it; a chat session's header and (in Chromium) its chip on the card say where it came from."""
from __future__ import annotations

import asyncio

from nicegui.testing import User as TestUser

from agor import auth
from agor.config import load_settings
from agor.gateway import channels, links
from agor.models import Role

from .conftest import PASSWORD, seed_board
from .test_pages import log_in, press
from .test_secrets_pages import frames, page_state  # noqa: F401 (frames is a fixture)
from .test_sessions import wait_for

SECRET = 'signing-secret-typed-in-the-page'
TOKEN = 'xoxb-typed-in-the-page'


def choose(user: TestUser, marker: str, option: str) -> None:
    user.find(marker=marker).click()
    user.find(option).click()


async def test_an_admin_creates_a_channel_and_maps_a_person(user: TestUser, git_repo, frames):  # noqa: F811
    await user.open('/')
    seeded = await asyncio.to_thread(seed_board, load_settings(), git_repo, bob=Role.member)
    await log_in(user, 'alice@example.com')
    await user.open('/admin')
    await user.should_see('No channels yet.', retries=30)
    press(user, 'New channel')
    await user.should_see(marker='channel-dialog', retries=30)
    user.find(marker='channel-name').type('#ops')
    choose(user, 'channel-target', 'Sprint · auth-fix')
    user.find(marker='channel-signing-secret').type(SECRET)
    user.find(marker='channel-bot-token').type(TOKEN)
    user.find(marker='channel-var-name').type('CHANNEL_VAR')
    user.find(marker='channel-var-value').type('channel-value')
    user.find(marker='add-channel-var').click()
    await wait_for(lambda: any(TOKEN in frame for frame in frames))  # the simulated typing's echo, sent after a tick
    frames.clear()
    press(user, 'Save')
    await user.should_see('Channel saved', retries=30)
    await user.should_see(marker='channel-#ops', retries=30)
    [channel] = (await asyncio.to_thread(channels.listing, seeded.owner))['channels']
    assert channel['env_names'] == ['CHANNEL_VAR'] and channel['worktree_id'] == seeded.worktree.id
    opened = await asyncio.to_thread(channels.opened, channel['id'])
    assert (opened.signing_secret, opened.bot_token) == (SECRET, TOKEN)
    assert frames and not any(SECRET in frame or TOKEN in frame or 'channel-value' in frame for frame in frames)
    assert SECRET not in page_state(user) and TOKEN not in page_state(user)
    await user.should_see(marker='identity-external', retries=30)
    user.find(marker='identity-external').type('UBOB')
    choose(user, 'identity-user', 'Bob (bob@example.com)')
    press(user, 'Link')
    await user.should_see(marker='identity-row', retries=30)
    mapped = await asyncio.to_thread(channels.identities, seeded.owner, channel['id'])
    assert [(m['external_id'], m['user']) for m in mapped] == [('UBOB', 'Bob')]


async def test_a_person_links_their_chat_account_with_a_code_and_unlinks_it(user: TestUser, git_repo):
    await user.open('/')
    seeded = await asyncio.to_thread(seed_board, load_settings(), git_repo, bob=Role.member)
    channel = await asyncio.to_thread(channels.save_channel, seeded.owner, None, {
        'name': '#ops', 'signing_secret': 's', 'bot_token': 't', 'board_id': seeded.board.id,
        'worktree_id': seeded.worktree.id, 'runtime': 'shell'})
    await log_in(user, 'bob@example.com')
    await user.open('/?settings=chat-accounts')
    await user.should_see('No chat account is linked to you.', retries=30)
    press(user, 'Make a code')
    await user.should_see(marker='link-code-value', retries=30)
    code = user.find(marker='link-code-value').elements.pop().value
    answer = await asyncio.to_thread(links.redeem, channel['id'], 'UBOB', code)
    assert answer.startswith('Linked: your messages here now run as Bob')
    await user.open('/?settings=chat-accounts')
    await user.should_see('UBOB', retries=30)
    press(user, 'Unlink')
    await user.should_see('No chat account is linked to you.', retries=30)
    assert await asyncio.to_thread(links.linked, seeded.users['bob']) == []
    assert await asyncio.to_thread(auth.list_users)  # (the owner is untouched)


async def test_a_chat_sessions_header_says_where_it_came_from(user: TestUser, git_repo):
    await user.open('/')
    seeded = await asyncio.to_thread(seed_board, load_settings(), git_repo, bob=Role.member)
    agent_id = await asyncio.to_thread(_chat_session, seeded)
    await log_in(user, 'bob@example.com')
    await user.open(f'/b/{seeded.board.slug}?session={agent_id}')
    await user.should_see('· from Slack · #ops · U0ALICE', retries=30)


def _chat_session(seeded) -> str:
    """A session bound to a thread of a Slack channel, as a message of U0ALICE (Alice) left it."""
    from agor import agent_sessions, db
    from agor.models import GatewayThread
    channel = channels.save_channel(seeded.owner, None, {
        'name': '#ops', 'signing_secret': 's', 'bot_token': 't', 'board_id': seeded.board.id,
        'worktree_id': seeded.worktree.id, 'runtime': 'shell'})
    agent = agent_sessions.create(seeded.owner, seeded.worktree.id, 'shell')
    with db.transaction() as session:
        session.add(GatewayThread(channel_id=channel['id'], external_channel='C0TEAM', thread_ts='1.1',
                                  session_id=agent.id, external_user='U0ALICE'))
    return agent.id


def test_a_chat_sessions_chip_on_the_card_says_where_it_came_from(browser, board_app):
    from playwright.sync_api import expect

    from agor import user_secrets

    from .app_server import open_board
    server, seeded = board_app
    user_secrets.init(load_settings(data_dir=str(server.data_dir)))  # the app's master secret
    _chat_session(seeded)
    page = open_board(browser, server, 'bob@example.com', PASSWORD, seeded.board.slug)
    chip = page.locator('.agor-session-chip')
    expect(chip).to_have_attribute('title', 'From Slack · #ops · U0ALICE', timeout=10_000)
    expect(chip).to_contain_text('From Slack · #ops · U0ALICE: Shell · new')  # its text for screen readers
    expect(chip.locator('.agor-chip-origin')).to_be_visible()
    page.context.close()
