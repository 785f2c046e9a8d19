"""Agent sessions: start one in a worktree (with a first prompt), prompt it, stop it, page through its transcript,
and follow it live as server-sent events.

The stream (`GET /sessions/{id}/stream`) sends `entry` for each transcript entry after `cursor` (the backlog first),
then `session` (the session's summary: its status, how many prompts wait) and again whenever it changes, `entry` for
each new entry and `append` when a streamed entry grows (`text` goes at offset `at` of entry `entry_id`; nothing is
sent twice). A turn has ended when a `session` event says the status is not `running` and nothing is `queued`. Every
HEARTBEAT_SECONDS (and on each `session` event) the caller's key or login and their access to the session are
checked again: when either is gone the stream sends `error` and ends."""
from __future__ import annotations

import asyncio
import json
from collections.abc import AsyncIterator
from typing import Annotated, Any

from fastapi import APIRouter, Depends, Query, Request
from fastapi.responses import StreamingResponse
from pydantic import BaseModel, Field

from agor import agent_sessions, events
from agor.errors import DomainError

from .base import Actor, ApiError, Credentials, WithRights, _credentials, identify
from .worktrees import resolve_worktree

HEARTBEAT_SECONDS = 15.0
BACKLOG_PAGE = 500


class SessionOut(WithRights):
    id: str
    worktree_id: str
    runtime: str
    runtime_label: str
    title: str
    status: str = Field(description='idle, running, awaiting_input, completed, failed or stopped')
    status_label: str
    error: str | None
    stuck: bool
    queued: int = Field(description='prompts waiting for the current run to end')
    created_by: str
    creator: str
    model: str | None
    created_at: str
    updated_at: str
    following: bool = Field(description='you hear its chime and see its pulse when it needs someone')


class SessionIn(BaseModel):
    worktree: str = Field(max_length=200, description='id, id prefix or name of the worktree')
    agent: str = Field(max_length=40, description='the agent runtime, e.g. claude-code, codex, gemini, shell')
    prompt: str | None = None
    model: str | None = Field(None, max_length=200)
    permission_mode: str | None = Field(None, max_length=40)


class PromptIn(BaseModel):
    prompt: str


class PromptOut(BaseModel):
    turn_id: str
    session: SessionOut


class StopOut(BaseModel):
    stopped: bool  # false: nothing was running (waiting prompts are dropped all the same)


class EntryOut(BaseModel):
    id: int
    turn_id: str | None
    kind: str
    text: str
    data: dict[str, Any]
    created_at: str


class TranscriptPage(BaseModel):
    items: list[EntryOut]
    next_cursor: str | None  # the last entry's id: pass it as `cursor` for what follows (also once more is written)


EntryCursor = Annotated[str | None, Query(max_length=18, pattern=r'^\d*$', description='an entry id: what follows it')]


def routes(router: APIRouter) -> None:
    tags = ['sessions']

    @router.get('/worktrees/{worktree}/sessions', response_model=list[SessionOut], tags=tags)
    def worktree_sessions(actor: Actor, worktree: str) -> list[dict]:
        """The worktree's sessions, newest first."""
        return agent_sessions.for_worktree(actor, resolve_worktree(actor, worktree)['id'])

    @router.post('/sessions', response_model=SessionOut, status_code=201, tags=tags)
    def create_session(actor: Actor, body: SessionIn) -> dict:
        """A new session in the worktree, run as you; with a prompt its first turn is queued at once."""
        worktree_id = resolve_worktree(actor, body.worktree)['id']
        agent = agent_sessions.create(actor, worktree_id, body.agent, body.prompt, model=body.model,
                                      permission_mode=body.permission_mode)
        return agent_sessions.get(actor, agent.id)

    @router.get('/sessions/{session_id}', response_model=SessionOut, tags=tags)
    def get_session(actor: Actor, session_id: str) -> dict:
        return agent_sessions.get(actor, session_id)

    @router.post('/sessions/{session_id}/prompts', response_model=PromptOut, status_code=201, tags=tags)
    def prompt(actor: Actor, session_id: str, body: PromptIn) -> dict:
        """Queue a prompt: it runs when the current run (if any) ends. Someone else's session needs the `prompt`
        level on its worktree and still runs as its creator."""
        turn = agent_sessions.prompt(actor, session_id, body.prompt)
        return {'turn_id': turn.id, 'session': agent_sessions.get(actor, session_id)}

    @router.post('/sessions/{session_id}/stop', response_model=StopOut, tags=tags)
    def stop(actor: Actor, session_id: str) -> StopOut:
        """Stop the current run and drop the prompts still waiting."""
        return StopOut(stopped=agent_sessions.stop(actor, session_id))

    @router.get('/sessions/{session_id}/transcript', response_model=TranscriptPage, tags=tags)
    def transcript(actor: Actor, session_id: str, cursor: EntryCursor = None,
                   limit: Annotated[int, Query(ge=1, le=1000)] = 200) -> dict:
        """Transcript entries after `cursor`, oldest first."""
        after = int(cursor or 0)
        entries = agent_sessions.transcript_after(actor, session_id, after, limit)
        return {'items': entries, 'next_cursor': str(entries[-1]['id']) if entries else (cursor or None)}

    @router.get('/sessions/{session_id}/stream', tags=tags, response_class=StreamingResponse,
                responses={200: {'content': {'text/event-stream': {'schema': {'type': 'string'}}},
                                 'description': 'server-sent events: session, entry, append, error'}})
    async def stream(request: Request, actor: Actor, credentials: Annotated[Credentials, Depends(_credentials)],
                     session_id: str, cursor: EntryCursor = None) -> StreamingResponse:
        """Follow the session live: its transcript after `cursor` (all of it without), then what it writes."""
        await asyncio.to_thread(agent_sessions.get, actor, session_id)  # 404 before the stream starts
        follower = _Follower(request, credentials, session_id, int(cursor or 0))
        return StreamingResponse(follower.events(), media_type='text/event-stream',
                                 headers={'Cache-Control': 'no-cache', 'X-Accel-Buffering': 'no'})


class _Follower:
    def __init__(self, request: Request, credentials: Credentials, session_id: str, after: int) -> None:
        self.request, self.credentials, self.session_id = request, credentials, session_id
        self.after = after
        self.lengths: dict[int, int] = {}  # entry id -> how much of its text was sent
        self.user: Any = None  # the caller as last loaded
        self.problem = ''  # the `error` event that ends the stream

    async def events(self) -> AsyncIterator[str]:
        queue: asyncio.Queue[Any] = asyncio.Queue()
        unsubscribe = events.bus.subscribe(events.topic('session', self.session_id), queue.put_nowait)
        try:
            summary = await self._check()
            if summary is None:
                yield self.problem
                return
            while True:  # the backlog, page by page: all the entries written before the summary was read
                page = await asyncio.to_thread(self._backlog)
                for entry in page:
                    yield self._entry(entry)
                if len(page) < BACKLOG_PAGE:
                    break
            yield _sse('session', summary)
            while True:
                try:
                    payload = await asyncio.wait_for(queue.get(), HEARTBEAT_SECONDS)
                except TimeoutError:
                    if await self._check() is None:
                        yield self.problem
                        return
                    yield ': still here\n\n'
                    continue
                if payload['type'] == 'session' and await self._check() is None:
                    yield self.problem
                    return
                message = self._message(payload)
                if message:
                    yield message
        finally:
            unsubscribe()

    async def _check(self) -> dict[str, Any] | None:
        """The session's summary as the caller (loaded now) may see it; None (and `problem`) when they may not."""
        try:
            return await asyncio.to_thread(self._as_caller_now)
        except (ApiError, DomainError) as refused:
            self.problem = _sse('error', {'code': 'gone', 'message': refused.message})
            return None

    def _as_caller_now(self) -> dict[str, Any]:
        user, _ = identify(self.request, self.credentials)  # a re-check: it spends none of the key's requests
        self.user = user
        return agent_sessions.get(user, self.session_id)

    def _backlog(self) -> list[dict[str, Any]]:
        return agent_sessions.transcript_after(self.user, self.session_id, self.after, BACKLOG_PAGE)

    def _entry(self, entry: dict[str, Any]) -> str:
        self.after = max(self.after, entry['id'])
        self.lengths[entry['id']] = len(entry['text'])
        return _sse('entry', entry)

    def _message(self, payload: dict[str, Any]) -> str | None:
        if payload['type'] == 'session':
            return _sse('session', payload['session'])
        if payload['type'] == 'entry':
            return self._entry(payload['entry']) if payload['entry']['id'] > self.after else None
        if payload['type'] == 'append':
            entry_id, at, text = payload['entry_id'], payload['at'], payload['text']
            known = self.lengths.get(entry_id)
            if known is None:  # an entry before the cursor
                return None
            end = at + len(text)
            if end <= known:
                return None  # the backlog had it
            self.lengths[entry_id] = end
            return _sse('append', {'entry_id': entry_id, 'at': max(at, known), 'text': text[max(0, known - at):]})
        return None


def _sse(event: str, data: Any) -> str:
    return f'event: {event}\ndata: {json.dumps(data, default=str)}\n\n'
