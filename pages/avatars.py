"""Uploaded avatars, served only to logged-in users (`/avatars/<id>`: a new upload gets a new id, so the answer may be
cached for good). The bytes were checked to be PNG, JPEG or WebP on upload and go out with that type, `nosniff` and a
policy that runs nothing, so an avatar can never act as a page."""
from __future__ import annotations

import asyncio

from fastapi import Response
from fastapi.responses import JSONResponse
from nicegui import app

from agor import logins, profile
from agor.errors import DomainError
from components.act import LOGIN

HEADERS = {'X-Content-Type-Options': 'nosniff', 'Content-Security-Policy': "default-src 'none'; sandbox",
           'Cache-Control': 'private, max-age=31536000, immutable'}


def register() -> None:
    @app.get('/avatars/{avatar_id}', include_in_schema=False)
    async def avatar(avatar_id: str) -> Response:
        token = app.storage.user.get(LOGIN)
        try:
            kind, data = await asyncio.to_thread(_load, token, avatar_id)
        except DomainError as problem:
            return JSONResponse({'detail': problem.message}, status_code=problem.status)
        return Response(data, media_type=kind, headers=HEADERS)


def _load(token: str | None, avatar_id: str) -> tuple[str, bytes]:
    return profile.avatar(logins.acting_user(token), avatar_id)
