"""The chat platforms' webhook: POST /gateway/<platform>/<channel id> (agor.gateway.service). Answered within the
platform's deadline; the message's work runs after, in a background task. Errors are JSON with a reason."""
from __future__ import annotations

import asyncio

from fastapi import Request
from fastapi.responses import JSONResponse
from nicegui import app, background_tasks

from agor.config import Settings
from agor.gateway import service

from .request_body import read_capped


def register(settings: Settings) -> None:
    @app.post('/gateway/{platform}/{channel_id}', tags=['gateway'])
    async def webhook(platform: str, channel_id: str, request: Request) -> JSONResponse:
        body = await read_capped(request, service.MAX_BODY)
        if body is None:  # refused before or as soon as it passes the limit
            return JSONResponse({'detail': 'The request body is too large.'}, status_code=413)
        answer = await asyncio.to_thread(service.receive, platform, channel_id, dict(request.headers), body)
        if answer.message is not None and answer.channel is not None:
            background_tasks.create(service.handle(answer.channel, answer.message), name='gateway message')
        return JSONResponse(answer.body, status_code=answer.status)
