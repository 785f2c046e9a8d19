"""The comments drawer through NiceGUI's simulated user: write, react, edit, delete; viewers only read."""
import asyncio

from nicegui import ui
from nicegui.testing import User as TestUser

from agor import comments
from agor.config import load_settings
from agor.models import Role
from components.comment_editor import CommentEditor

from .conftest import seed_board
from .test_pages import log_in


async def test_member_writes_reacts_edits_and_deletes(user: TestUser, git_repo):
    await user.open('/')
    seeded = await asyncio.to_thread(seed_board, load_settings(), git_repo, bob=Role.member)
    await log_in(user, 'bob@example.com')
    await user.open(f'/b/{seeded.board.slug}')
    user.find(marker='comments-toggle').click()
    user.find(marker='new-board-comment').trigger('submit', {'text': 'Ship **today**?'})
    await user.should_see('Ship <strong>today</strong>?', retries=30)  # rendered Markdown
    thread = (await asyncio.to_thread(comments.threads, seeded.owner, seeded.board.id))[0]
    assert thread['comments'][0]['author'] == 'Bob' and thread['target_type'] == 'board'

    user.find(marker='emoji-🎉').click()
    await user.should_see('🎉 1', retries=30)
    user.find(marker='edit').click()
    user.find(marker='edit-comment').trigger('submit', {'text': 'Ship tomorrow?'})
    await user.should_see('edited', retries=30)
    await user.should_see('Ship tomorrow?')

    user.find(marker='edit').click()
    user.find(marker='edit-comment').trigger('submit', {'text': '   '})  # refused with a notice, text kept
    await user.should_see('empty comment is not saved', retries=30)
    assert (await asyncio.to_thread(comments.threads, seeded.owner, seeded.board.id))[0]['comments'][0]['body'] \
        == 'Ship tomorrow?'

    user.find(marker='delete').click()
    await user.should_see(marker='confirm-delete', retries=30)
    user.find(marker='confirm-delete').click()
    await user.should_see('No open threads', retries=30)


async def test_viewer_reads_threads_but_gets_no_editor(user: TestUser, git_repo):
    await user.open('/')
    seeded = await asyncio.to_thread(seed_board, load_settings(), git_repo, vic=Role.viewer)
    await asyncio.to_thread(comments.create, seeded.owner, seeded.board.id, 'Board rule: one PR per card')
    await log_in(user, 'vic@example.com')
    await user.open(f'/b/{seeded.board.slug}')
    user.find(marker='comments-toggle').click()
    await user.should_see('Board rule: one PR per card', retries=30)
    await user.should_not_see(marker='comment-tool')
    await user.should_not_see(kind=CommentEditor)
    await user.should_not_see(kind=ui.button, content='Resolve')
