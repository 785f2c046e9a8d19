"""The session panel's MCP dialog and the new-session form's picker, through NiceGUI's simulated user: both say
which chosen OAuth servers the user has not connected (they are left out of the runs) before anything runs."""
import asyncio

from nicegui.testing import User as TestUser

from agor import agent_sessions, mcp_servers
from agor.config import load_settings

from .conftest import seed_board
from .test_pages import log_in, press


def _scene(git_repo):
    seeded = seed_board(load_settings(), git_repo)
    alice = seeded.owner
    oauth = mcp_servers.save_server(alice, None, {'name': 'tracker', 'transport': 'http', 'auth': 'oauth',
                                                  'url': 'https://93.184.216.34/mcp'}, False)
    open_one = mcp_servers.save_server(alice, None, {'name': 'docs', 'transport': 'http',
                                                     'url': 'https://93.184.216.35/mcp'}, False)
    agent = agent_sessions.create(alice, seeded.worktree.id, 'shell', mcp_server_ids=[oauth['id'], open_one['id']])
    return seeded, agent.id


async def test_the_session_dialog_lists_servers_left_out_before_a_run(user: TestUser, git_repo):
    await user.open('/')
    seeded, agent_id = await asyncio.to_thread(_scene, git_repo)
    await log_in(user, 'alice@example.com')
    await user.open(f'/b/{seeded.board.slug}?session={agent_id}')
    await user.should_see(marker='session-mcp', retries=30)
    user.find(marker='session-mcp').click()
    await user.should_see(marker='session-mcp-dialog', retries=30)
    await user.should_see('tracker: not connected by you: left out until connected under Settings → MCP '
                          'authorizations', retries=30)
    await user.should_not_see('docs: not connected')
    press(user, 'Save')
    await user.should_see('MCP servers saved', retries=30)
