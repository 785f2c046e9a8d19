"""The HTTP API under `/api/v1` (docs/api.md), one module per resource, on NiceGUI's own FastAPI app; its OpenAPI
document at `/api/openapi.json` and Swagger UI (served from this app, no CDN) at `/api/docs`.

`pages.api.base` holds what every route shares (who acts, errors, limits, paging). Registered at every start-up
(pages.register): the routes of a previous start are replaced, never doubled."""
from __future__ import annotations

from typing import Any

from fastapi import APIRouter, Request
from fastapi.openapi.docs import get_swagger_ui_html
from fastapi.openapi.utils import get_openapi
from fastapi.responses import HTMLResponse, JSONResponse
from nicegui import app
from starlette.routing import BaseRoute

from agor.config import Settings

from . import boards, comments, env, mcp, me, notifications, sessions, worktrees
from .base import ERRORS, PREFIX, ApiRoute, configure, error_response

RESOURCES = (me, boards, worktrees, comments, notifications, sessions, env, mcp)
DOCS_ASSETS = '/api/docs/assets'
DESCRIPTION = ('Everything the board does, for scripts: authenticate with a personal API key (Settings → Personal '
               'API Keys) as `Authorization: Bearer agor_…`. Errors are JSON `{code, message}`; lists page with '
               '`cursor`/`next_cursor`. See docs/api.md.')
_mounted: list[BaseRoute] = []


def register(settings: Settings) -> None:
    configure(settings)
    router = APIRouter(prefix=PREFIX, route_class=ApiRoute, responses=ERRORS)
    for resource in RESOURCES:
        resource.routes(router)

    @router.api_route('/{path:path}', methods=['GET', 'POST', 'PUT', 'PATCH', 'DELETE'], include_in_schema=False)
    def unknown(request: Request) -> JSONResponse:
        return error_response(404, f'No API route {request.method} {request.url.path}: see /api/docs.')

    schema = openapi(router.routes)
    docs = APIRouter()

    @docs.get('/api/openapi.json', include_in_schema=False)
    def openapi_json() -> JSONResponse:
        return JSONResponse(schema)

    @docs.get('/api/docs', include_in_schema=False)
    def swagger() -> HTMLResponse:
        return get_swagger_ui_html(openapi_url='/api/openapi.json', title='Agor API',
                                   swagger_js_url=f'{DOCS_ASSETS}/swagger-ui-bundle.js',
                                   swagger_css_url=f'{DOCS_ASSETS}/swagger-ui.css',
                                   swagger_favicon_url=f'{DOCS_ASSETS}/favicon-32x32.png')

    for route in _mounted:
        if route in app.router.routes:
            app.router.routes.remove(route)
    _mounted[:] = [*router.routes, *docs.routes]
    app.router.routes.extend(_mounted)
    if not any(getattr(r, 'path', None) == DOCS_ASSETS for r in app.router.routes):
        from swagger_ui_bundle import swagger_ui_path
        app.add_static_files(DOCS_ASSETS, swagger_ui_path)


def openapi(routes: list[BaseRoute]) -> dict[str, Any]:
    return get_openapi(title='Agor API', version='1', description=DESCRIPTION, routes=routes)
