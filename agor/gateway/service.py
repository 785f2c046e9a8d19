"""A webhook request from a chat platform, and the message it carries.

`receive` (in a worker thread, well within Slack's 3 s): the channel's signing secret verifies the request (nothing
is stored for a refused one), a URL challenge is answered, and a message's event id is recorded, so a retry of it is
answered at once without doing it again. `handle` then does the work after the answer: a link code links the
writer, an unmapped writer is told how to link (nothing runs), and a mapped writer's message starts a session in the
channel's worktree as their app user (or is queued as a prompt in the session bound to the thread), with every
check a board user gets (role, worktree level, provider key). `agor.gateway.relay` posts what the run answers.
"""
from __future__ import annotations

import asyncio
import logging
import time
from collections.abc import Mapping
from dataclasses import dataclass, field
from datetime import timedelta
from typing import Any

import httpx
from sqlalchemy import delete
from sqlalchemy.exc import IntegrityError
from sqlmodel import col, select

from .. import agent_sessions, db, mcp_servers
from ..errors import DomainError
from ..models import (
    AgentSession,
    GatewayChannel,
    GatewayEvent,
    GatewayIdentity,
    GatewayThread,
    GatewayTurn,
    User,
    Worktree,
    utcnow,
)
from . import channels, links
from .platform import Adapter, Inbound, PlatformError
from .slack import SlackAdapter

log = logging.getLogger(__name__)
ADAPTERS: dict[str, Adapter] = {'slack': SlackAdapter()}
EVENT_RETENTION = timedelta(days=1)  # Slack retries within minutes; a day of event ids is plenty
MAX_BODY = 1024 * 1024
HOW_TO_LINK = ('Hi <@{user}>: I do not know who you are in Agor yet, so nothing ran. To link your account, open Agor, '
               'go to Settings → Chat accounts, make a one-time code and post it here.')


@dataclass
class Answer:
    """The HTTP answer to the platform, and the message to handle once it is sent (if any)."""
    status: int
    body: dict[str, Any]
    message: Inbound | None = None
    channel: channels.Opened | None = field(default=None, repr=False)


def receive(platform: str, channel_id: str, headers: Mapping[str, str], body: bytes,
            now: float | None = None) -> Answer:
    adapter = ADAPTERS.get(platform)
    channel = channels.opened(channel_id) if adapter else None
    if adapter is None or channel is None or channel.platform != platform:
        return Answer(404, {'detail': 'No such gateway channel.'})
    if len(body) > MAX_BODY:
        return Answer(413, {'detail': 'The request body is too large.'})
    why = adapter.verify(channel.signing_secret, {k.lower(): v for k, v in headers.items()}, body,
                         time.time() if now is None else now)
    if why:
        return Answer(401, {'detail': why})
    try:
        inbound = adapter.parse(body)
    except ValueError:
        return Answer(400, {'detail': 'The body is not the platform\'s JSON.'})
    if inbound.kind == 'challenge':
        return Answer(200, {'challenge': inbound.challenge})
    if not channel.enabled:
        return Answer(200, {'ok': True, 'detail': 'This channel is disabled: the event was ignored.'})
    if inbound.kind != 'message':
        return Answer(200, {'ok': True})
    if not _first_time(channel.id, inbound.event_id):
        return Answer(200, {'ok': True, 'duplicate': True})
    return Answer(200, {'ok': True}, inbound, channel)


async def handle(channel: channels.Opened, message: Inbound) -> None:
    """The message's work (after the platform has its answer): a reply in the thread when there is one to give."""
    try:
        reply = await asyncio.to_thread(act_on, channel, message)
    except Exception:  # a bug must not go unseen; the writer is told something went wrong
        log.exception('gateway %s: event %s failed', channel.id, message.event_id)
        reply = 'Something went wrong in Agor and nothing ran; an admin can find the details in the server log.'
    if reply:
        await say(channel, message.conversation, message.thread, reply)


async def say(channel: channels.Opened, conversation: str, thread: str, text: str) -> str | None:
    """Post in a thread; a platform refusal is logged (never the token) and None returned."""
    try:
        async with httpx.AsyncClient() as client:
            return await ADAPTERS[channel.platform].post_message(client, channel.api_base, channel.bot_token,
                                                                 conversation, thread, text)
    except PlatformError as error:
        log.warning('gateway %s: %s', channel.id, error)
        return None


def act_on(channel: channels.Opened, message: Inbound) -> str | None:
    """Link, refuse or run the message; what to answer in its thread (None: the run's answer will come)."""
    if links.looks_like_code(message.text):
        return links.redeem(channel.id, message.user, message.text)
    with db.read() as session:
        link = session.exec(select(GatewayIdentity).where(GatewayIdentity.channel_id == channel.id,
                                                          GatewayIdentity.external_id == message.user)).first()
        user = session.get(User, link.user_id) if link else None
    if user is None:
        return HOW_TO_LINK.format(user=message.user)
    if not user.active:
        return 'Your Agor account is deactivated, so nothing ran.'
    if not message.text:
        return None
    try:
        with db.transaction() as session:
            user = session.get(User, user.id)  # as stored now, in the same transaction as the checks
            assert user is not None
            turn = _prompt(session, channel, message, user)
            session.add(GatewayTurn(turn_id=turn.id, from_chat=True))
    except DomainError as refusal:
        return f'Nothing ran: {refusal.message}'
    return None


def _prompt(session, channel: channels.Opened, message: Inbound, user: User):
    thread = session.exec(select(GatewayThread).where(GatewayThread.channel_id == channel.id,
                                                      GatewayThread.thread_ts == message.thread)).first()
    agent = session.get(AgentSession, thread.session_id) if thread else None
    if agent is None:
        row = session.get(GatewayChannel, channel.id)
        worktree = session.get(Worktree, row.worktree_id) if row else None
        if worktree is None:
            raise DomainError('this channel\'s worktree no longer exists; ask an admin to choose another.')
        agent = agent_sessions.add(session, user, worktree, channel.runtime, None)
        agent.title = _title(message.text)
        mcp_servers.attach(session, agent.id, row.mcp_server_ids)  # run with the writer's grants (agor.mcp_servers)
        session.add(GatewayThread(channel_id=channel.id, external_channel=message.conversation,
                                  thread_ts=message.thread, session_id=agent.id, external_user=message.user))
        session.flush()  # the session's runs now get the channel's variables (and its key check sees them)
    return agent_sessions.queue_prompt(session, user, agent, message.text)


def _first_time(channel_id: str, event_id: str) -> bool:
    """Record the event id; False when it was recorded before (a retry). Old ids are dropped on the way."""
    try:
        with db.transaction() as session:
            session.execute(delete(GatewayEvent).where(col(GatewayEvent.received_at) < utcnow() - EVENT_RETENTION))
            session.add(GatewayEvent(channel_id=channel_id, event_id=event_id))
    except IntegrityError:
        return False
    return True


def _title(text: str) -> str:
    line = ' '.join(text.split())
    return line if len(line) <= 80 else line[:79] + '…'
