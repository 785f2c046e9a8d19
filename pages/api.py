"""The HTTP API, authenticated by personal API keys (`Authorization: Bearer agor_…`, agor.api_keys). Today only
`GET /api/v1/me`; the full API is its own issue. Errors are JSON with a reason (`{"detail": …}`), never a traceback."""
from __future__ import annotations

from typing import Any

from fastapi import Request
from fastapi.responses import JSONResponse
from nicegui import app

from agor import api_keys
from agor.config import Settings
from agor.errors import DomainError
from agor.models import User

HOW = 'send a personal API key (Settings → Personal API Keys) as "Authorization: Bearer agor_…"'


def register(settings: Settings) -> None:
    @app.get('/api/v1/me', tags=['api'])
    def me(request: Request) -> Any:  # sync: FastAPI runs it in a worker thread, off the event loop
        """The account the API key acts as."""
        user = authenticated(settings, request)
        if isinstance(user, JSONResponse):
            return user
        return {'id': user.id, 'email': user.email, 'name': user.name, 'role': user.role}


def authenticated(settings: Settings, request: Request) -> User | JSONResponse:
    """The user of the request's bearer key, as stored now, or the 401 answer saying why not."""
    scheme, _, token = request.headers.get('authorization', '').partition(' ')
    if scheme.lower() != 'bearer' or not token.strip():
        return error(401, f'Not authenticated: {HOW}.')
    try:
        return api_keys.authenticate(settings, token.strip())
    except DomainError as problem:
        return error(problem.status, problem.message)


def error(status: int, reason: str) -> JSONResponse:
    headers = {'WWW-Authenticate': 'Bearer'} if status == 401 else None
    return JSONResponse({'detail': reason}, status_code=status, headers=headers)
