"""What every route of the HTTP API shares: who acts, errors as `{code, message}`, the body cap, rate limits, paging.

Who acts: a personal API key as a bearer token (agor.api_keys), else the browser's login (its NiceGUI session
cookie, agor.logins) for same-origin calls; an unsafe method with a login also needs the `X-Agor-CSRF` header (a
cross-site form or fetch cannot send it without a CORS preflight, which this app never grants) and, when the
browser says where it comes from, an `Origin` of this app. The user is loaded as stored now, on every request, in a
worker thread (FastAPI runs the sync dependency and the sync route there: never on the event loop), and every
route calls the domain function the UI calls with that user, so each rule is the UI's rule.
"""
from __future__ import annotations

import base64
import binascii
import copy
import logging
from dataclasses import dataclass
from typing import Annotated, Any, Generic, TypeVar

from fastapi import Depends, Query, Request
from fastapi.exceptions import RequestValidationError
from fastapi.responses import JSONResponse
from fastapi.routing import APIRoute
from fastapi.security import HTTPAuthorizationCredentials, HTTPBearer
from nicegui import app
from pydantic import BaseModel, Field, create_model
from starlette.exceptions import HTTPException

from agor import api_keys, logins
from agor.config import Settings
from agor.errors import DomainError
from agor.models import User
from agor.rate_limit import Buckets
from components.act import LOGIN

from ..request_body import read_capped

log = logging.getLogger('agor.api')
PREFIX = '/api/v1'
HOW = 'send a personal API key (Settings → Personal API Keys) as "Authorization: Bearer agor_…"'
MAX_BODY = 256 * 1024  # a prompt may be 100 KB, JSON-escaped up to twice that
AUTH_FAILURES = 30  # failed authentications one address may make ...
AUTH_FAILURE_MINUTES = 10  # ... within this many minutes before it must wait
CSRF_HEADER = 'X-Agor-CSRF'
SESSION_COOKIE = 'session'  # NiceGUI's (Starlette's SessionMiddleware)
SAFE_METHODS = {'GET', 'HEAD', 'OPTIONS'}
SERVER_ERROR = 'Something went wrong on the server; nothing was changed. If it keeps failing, ask an admin to look ' \
               'at the server log.'
CODES = {400: 'bad_request', 401: 'unauthorized', 403: 'forbidden', 404: 'not_found', 405: 'method_not_allowed',
         409: 'conflict', 413: 'too_large', 422: 'invalid_input', 429: 'rate_limited', 500: 'server_error'}


class WithRights(BaseModel):
    """An object's detail as the caller sees it: what they may do to it (the server checks every action again)."""
    rights: dict[str, Any] = Field(description='each action -> null when you may do it, else why not (and, for a '
                                               'worktree, your level, the level others have and its owner)')


class Error(BaseModel):
    """Every error: a stable `code` (from the status) and a `message` for people."""
    code: str
    message: str


ERRORS: dict[int | str, dict[str, Any]] = {
    status: {'model': Error, 'description': description} for status, description in (
        (400, 'A body that cannot be parsed'), (401, 'No valid API key or login'),
        (403, 'Your role or your rights on this object do not allow it'),
        (404, 'No such object, or one you cannot see'), (409, 'Conflicts with the current state'),
        (413, 'The request body is too large'), (422, 'Invalid input'), (429, 'Too many requests'),
        (500, 'Server error'))}


class ApiError(Exception):
    def __init__(self, status: int, message: str, retry_after: int | None = None) -> None:
        super().__init__(message)
        self.status, self.message, self.retry_after = status, message, retry_after


def error_response(status: int, message: str, retry_after: int | None = None) -> JSONResponse:
    headers = {'WWW-Authenticate': 'Bearer'} if status == 401 else {}
    if retry_after is not None:
        headers['Retry-After'] = str(retry_after)
    return JSONResponse({'code': CODES.get(status, 'error'), 'message': message}, status_code=status,
                        headers=headers)


class ApiRoute(APIRoute):
    """Every API route: the body capped, and whatever goes wrong answered as JSON `{code, message}` (a traceback
    only in the server log)."""

    def get_route_handler(self) -> Any:
        handler = super().get_route_handler()

        async def guarded(request: Request) -> Any:
            try:
                await _cap_body(request)
                return await handler(request)
            except ApiError as problem:
                return error_response(problem.status, problem.message, problem.retry_after)
            except DomainError as problem:
                return error_response(problem.status, problem.message)
            except RequestValidationError as problem:
                return error_response(422, describe(problem.errors()))
            except HTTPException as problem:
                return error_response(problem.status_code, str(problem.detail))
            except Exception:
                log.exception('API %s %s failed', request.method, request.url.path)
                return error_response(500, SERVER_ERROR)
            finally:
                _forget_empty_storage(request)
        return guarded


def _forget_empty_storage(request: Request) -> None:
    """NiceGUI makes a user storage for every request without its session cookie and keeps it for the life of the
    process: a script calling with a key (no cookie) would add one per request. Such a request's storage is new and
    nobody else's, so it is dropped again (NiceGUI's storage internals, pinned); a browser's is never touched."""
    if 'authorization' not in request.headers or SESSION_COOKIE in request.cookies:
        return
    browser_id = request.session.get('id')
    users = app.storage._users
    if browser_id in users and not users[browser_id]:
        del users[browser_id]


async def _cap_body(request: Request) -> None:
    if request.method in SAFE_METHODS:
        return
    body = await read_capped(request, MAX_BODY)
    if body is None:
        raise ApiError(413, f'The request body is limited to {MAX_BODY // 1024} KB.')
    request._body = body  # what FastAPI reads the body from (Starlette caches it there)


def describe(errors: Any) -> str:
    """Pydantic's validation errors as one sentence: where, and what is wrong."""
    parts = []
    for problem in list(errors)[:5]:
        where = '.'.join(str(part) for part in problem.get('loc', ()) if part not in ('body',)) or 'body'
        parts.append(f'{where}: {problem.get("msg", "invalid")}')
    return 'Invalid request: ' + '; '.join(parts) + '.'


# ---- who acts --------------------------------------------------------------------------------------------------------

@dataclass
class _State:
    settings: Settings
    requests: Buckets
    failures: Buckets


_state: _State | None = None
_bearer = HTTPBearer(auto_error=False, description='A personal API key: Settings → Personal API Keys')


def configure(settings: Settings) -> None:
    global _state
    _state = _State(settings, Buckets(settings.api_requests_per_minute),
                    Buckets(AUTH_FAILURES / AUTH_FAILURE_MINUTES, burst=AUTH_FAILURES))


def state() -> _State:
    assert _state is not None, 'pages.api.register() first'
    return _state


@dataclass(frozen=True)
class Credentials:
    bearer: str | None  # the key, when the request has an Authorization header (empty: not a bearer key)
    login: str | None  # else the browser's login token


async def _credentials(request: Request,
                       key: Annotated[HTTPAuthorizationCredentials | None, Depends(_bearer)]) -> Credentials:
    """On the event loop (NiceGUI's user storage lives there); no database here."""
    if 'authorization' in request.headers:
        return Credentials(key.credentials.strip() if key else '', None)
    return Credentials(None, app.storage.user.get(LOGIN))


def acting_user(request: Request, credentials: Annotated[Credentials, Depends(_credentials)]) -> User:
    """The user the request acts as, as stored now (in a worker thread); 401 or 429 JSON saying why not. Each
    request takes one of the key's (or login's) tokens."""
    limits = state()
    address = request.client.host if request.client else ''
    if credentials.bearer is not None:
        wait = limits.failures.wait(address)
        if wait:
            raise ApiError(429, f'Too many failed authentications from your address: try again in {wait} s.', wait)
    user, bucket = identify(request, credentials)
    wait = limits.requests.take(bucket)
    if wait:
        raise ApiError(429, f'Too many requests with this key: try again in {wait} s.', wait)
    return user


def identify(request: Request, credentials: Credentials) -> tuple[User, str]:
    """Who the credentials are, loaded now, and the rate-limit bucket of their key or login; a failed key counts
    against the address. A long request re-checks its caller with this alone (no token taken)."""
    limits = state()
    address = request.client.host if request.client else ''
    if credentials.bearer is not None:
        if not credentials.bearer:
            limits.failures.take(address)
            raise ApiError(401, f'Not authenticated: {HOW}.')
        try:
            user = api_keys.authenticate(limits.settings, credentials.bearer)
        except api_keys.Unauthorized as problem:
            limits.failures.take(address)
            raise ApiError(401, problem.message) from None
        bucket = 'key:' + credentials.bearer.split('_')[1]
    else:
        if not credentials.login:
            raise ApiError(401, f'Not authenticated: {HOW}.')
        if request.method not in SAFE_METHODS:
            _check_same_origin(request)
        found = logins.current(credentials.login)
        if found is None:
            raise ApiError(401, f'Your login has ended: log in again, or {HOW}.')
        login_id, user = found
        bucket = 'login:' + login_id
    return user, bucket


def _check_same_origin(request: Request) -> None:
    if not request.headers.get(CSRF_HEADER):
        raise ApiError(403, f'A change with a browser login needs the {CSRF_HEADER} header (or use an API key).')
    origin = request.headers.get('origin')
    own = f'{request.url.scheme}://{request.headers.get("host", "")}'
    if origin and origin != own and origin not in state().settings.allowed_origins:
        raise ApiError(403, f'Requests from {origin} may not act with your login.')


Actor = Annotated[User, Depends(acting_user)]


# ---- paging ----------------------------------------------------------------------------------------------------------

T = TypeVar('T')


def patch_of(model: type[BaseModel], name: str) -> type[BaseModel]:
    """`model` with every field optional, None by default, its limits kept: what a PATCH of it takes (only the
    fields sent change)."""
    fields: dict[str, Any] = {}
    for field_name, info in model.model_fields.items():
        optional = copy.copy(info)
        optional.default = None
        fields[field_name] = (info.annotation | None, optional)
    return create_model(name, **fields)


class Point(BaseModel):
    """A point on a board's canvas."""
    x: float
    y: float


class Page(BaseModel, Generic[T]):
    items: list[T]
    next_cursor: str | None = None  # pass it as `cursor` for the next page; null: this was the last


CursorParam = Annotated[str | None, Query(max_length=100, description='`next_cursor` of the previous page')]
LimitParam = Annotated[int, Query(ge=1, le=200, description='items per page')]


def paged(items: list[Any], cursor: str | None, limit: int) -> dict[str, Any]:
    """One page of a list the domain returned whole, in its order."""
    start = decode_cursor(cursor)
    end = start + limit
    return {'items': items[start:end], 'next_cursor': encode_cursor(end) if end < len(items) else None}


def encode_cursor(position: int) -> str:
    return base64.urlsafe_b64encode(f'at:{position}'.encode()).decode().rstrip('=')


def decode_cursor(cursor: str | None) -> int:
    if not cursor:
        return 0
    try:
        text = base64.urlsafe_b64decode(cursor + '=' * (-len(cursor) % 4)).decode()
        kind, _, number = text.partition(':')
        if kind == 'at' and number.isdigit():
            return int(number)
    except (binascii.Error, UnicodeDecodeError, ValueError):
        pass
    raise ApiError(422, 'Invalid cursor: pass the next_cursor of the previous page, or none for the first page.')
