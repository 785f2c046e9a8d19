"""A real OAuth 2.1 authorization server and an MCP server it protects, on loopback, for the MCP grant tests.

`AuthServer`: the mcp SDK's authorization-server routes (RFC 8414 metadata, DCR, /authorize, /token, /revoke) over
an in-memory provider that approves at once as `subject` (the person "logged in" at the AS), rotates refresh
tokens on every refresh (a spent one is refused with invalid_grant) and counts what it did. `access_ttl` sets the
access tokens' lifetime; `metadata_override` replaces fields of its metadata (bad-input tests).

`ProtectedMcp`: an MCPServer with a `whoami` tool (answers the token's subject and records it) served over
streamable HTTP (`/mcp`) and SSE (`/sse`), checking bearer tokens against the AS's provider; the app it is in
serves RFC 9728 protected-resource metadata.
"""
from __future__ import annotations

import asyncio
import secrets
import socket
import threading
import time
from dataclasses import dataclass, field
from typing import Any

import uvicorn
from mcp.server.auth.middleware.auth_context import get_access_token
from mcp.server.auth.provider import (
    AccessToken,
    AuthorizationCode,
    AuthorizationParams,
    RefreshToken,
    TokenError,
    construct_redirect_uri,
)
from mcp.server.auth.routes import build_metadata, create_auth_routes
from mcp.server.auth.settings import AuthSettings, ClientRegistrationOptions, RevocationOptions
from mcp.server.mcpserver import MCPServer
from mcp.server.transport_security import TransportSecuritySettings
from mcp.shared.auth import OAuthClientInformationFull, OAuthToken
from pydantic import AnyHttpUrl
from starlette.applications import Starlette
from starlette.responses import JSONResponse, StreamingResponse


@dataclass
class Provider:
    subject: str = 'alice'
    access_ttl: int = 3600
    clients: dict[str, OAuthClientInformationFull] = field(default_factory=dict)
    codes: dict[str, AuthorizationCode] = field(default_factory=dict)
    access: dict[str, AccessToken] = field(default_factory=dict)
    refresh: dict[str, RefreshToken] = field(default_factory=dict)
    refreshes: int = 0
    revoked: list[str] = field(default_factory=list)
    authorize_params: list[AuthorizationParams] = field(default_factory=list)

    async def get_client(self, client_id: str) -> OAuthClientInformationFull | None:
        return self.clients.get(client_id)

    async def register_client(self, client_info: OAuthClientInformationFull) -> None:
        self.clients[client_info.client_id] = client_info

    async def authorize(self, client: OAuthClientInformationFull, params: AuthorizationParams) -> str:
        self.authorize_params.append(params)
        code = secrets.token_urlsafe(24)
        self.codes[code] = AuthorizationCode(
            code=code, scopes=params.scopes or ['mcp'], expires_at=time.time() + 300, client_id=client.client_id,
            code_challenge=params.code_challenge, redirect_uri=params.redirect_uri,
            redirect_uri_provided_explicitly=params.redirect_uri_provided_explicitly, resource=params.resource,
            subject=self.subject)
        return construct_redirect_uri(str(params.redirect_uri), code=code, state=params.state)

    async def load_authorization_code(self, client: OAuthClientInformationFull, code: str) -> AuthorizationCode | None:
        return self.codes.get(code)

    async def exchange_authorization_code(self, client: OAuthClientInformationFull,
                                          code: AuthorizationCode) -> OAuthToken:
        del self.codes[code.code]
        return self._issue(client.client_id, code.scopes, code.subject)

    async def load_refresh_token(self, client: OAuthClientInformationFull, token: str) -> RefreshToken | None:
        return self.refresh.get(token)

    async def exchange_refresh_token(self, client: OAuthClientInformationFull, token: RefreshToken,
                                     scopes: list[str]) -> OAuthToken:
        if self.refresh.pop(token.token, None) is None:
            raise TokenError('invalid_grant', 'refresh token already used')
        self.refreshes += 1
        return self._issue(client.client_id, scopes or token.scopes, token.subject)

    async def load_access_token(self, token: str) -> AccessToken | None:
        found = self.access.get(token)
        return found if found is not None and (found.expires_at or 0) > time.time() else None

    async def revoke_token(self, token: AccessToken | RefreshToken) -> None:
        self.revoked.append(token.token)
        self.access.pop(token.token, None)
        self.refresh.pop(token.token, None)

    def _issue(self, client_id: str, scopes: list[str], subject: str | None) -> OAuthToken:
        access, refresh = f'at-{secrets.token_urlsafe(16)}', f'rt-{secrets.token_urlsafe(16)}'
        self.access[access] = AccessToken(token=access, client_id=client_id, scopes=scopes,
                                          expires_at=int(time.time()) + self.access_ttl, subject=subject)
        self.refresh[refresh] = RefreshToken(token=refresh, client_id=client_id, scopes=scopes, subject=subject)
        return OAuthToken(access_token=access, expires_in=self.access_ttl, scope=' '.join(scopes),
                          refresh_token=refresh)

    def expire_access_tokens(self) -> None:
        for token in self.access.values():
            token.expires_at = int(time.time()) - 1


class Served:
    """A Starlette app served by uvicorn on a pre-bound loopback socket, in a thread."""

    def __init__(self) -> None:
        self.sock = socket.socket()
        self.sock.bind(('127.0.0.1', 0))
        self.url = f'http://127.0.0.1:{self.sock.getsockname()[1]}'
        self.server: uvicorn.Server | None = None
        self.thread: threading.Thread | None = None

    def serve(self, app: Any) -> None:
        self.server = uvicorn.Server(uvicorn.Config(app, log_level='warning', lifespan='on'))
        self.thread = threading.Thread(target=self.server.run, kwargs={'sockets': [self.sock]}, daemon=True)
        self.thread.start()
        deadline = time.monotonic() + 10
        while not self.server.started:
            assert time.monotonic() < deadline, 'the test server did not start'
            time.sleep(0.02)

    def stop(self) -> None:
        if self.server is not None:
            self.server.should_exit = True
        if self.thread is not None:
            self.thread.join(10)
        self.sock.close()


class AuthServer(Served):
    def __init__(self) -> None:
        super().__init__()
        self.provider = Provider()
        self.metadata_override: dict[str, Any] | None = None
        self.endless_metadata = False  # its metadata document: megabytes of blanks, streamed
        self.sent = 0  # bytes of that document sent so far
        self.requests: list[str] = []
        registration = ClientRegistrationOptions(enabled=True, valid_scopes=['mcp'], default_scopes=['mcp'])
        routes = create_auth_routes(self.provider, issuer_url=AnyHttpUrl(self.url),
                                    client_registration_options=registration,
                                    revocation_options=RevocationOptions(enabled=True))
        self.metadata = build_metadata(AnyHttpUrl(self.url), None, registration, RevocationOptions(enabled=True)) \
            .model_dump(mode='json', exclude_none=True)
        app = Starlette(routes=routes)

        async def record(scope: Any, receive: Any, send: Any) -> None:
            if scope['type'] == 'http':
                self.requests.append(f'{scope["method"]} {scope["path"]}')
                if self.endless_metadata and scope['path'] == '/.well-known/oauth-authorization-server':
                    return await StreamingResponse(self._blanks(), media_type='application/json')(scope, receive, send)
                if self.metadata_override is not None and scope['path'] == '/.well-known/oauth-authorization-server':
                    body = {key: value for key, value in {**self.metadata, **self.metadata_override}.items()
                            if value is not None}
                    return await JSONResponse(body)(scope, receive, send)
            await app(scope, receive, send)
        self.serve(record)

    async def _blanks(self) -> Any:
        for _ in range(1024):  # 64 MB, stopped when the client hangs up (Starlette cancels a stream then)
            await asyncio.sleep(0.001)
            self.sent += 65536
            yield b' ' * 65536


class Verifier:
    def __init__(self, provider: Provider) -> None:
        self.provider = provider

    async def verify_token(self, token: str) -> AccessToken | None:
        return await self.provider.load_access_token(token)


class ProtectedMcp(Served):
    def __init__(self, auth_server: AuthServer) -> None:
        super().__init__()
        self.subjects: list[str] = []
        self.unauthorized = 0
        self.requests: list[str] = []  # 'METHOD /path?query' of every HTTP request
        security = TransportSecuritySettings(enable_dns_rebinding_protection=False)
        http_app = self._server(auth_server, '/mcp').streamable_http_app(transport_security=security)
        sse_app = self._server(auth_server, '/sse').sse_app(transport_security=security)

        async def app(scope: Any, receive: Any, send: Any) -> None:
            path = scope.get('path', '') if scope['type'] == 'http' else ''
            if path:
                query = scope.get('query_string', b'').decode()
                self.requests.append(f'{scope["method"]} {path}{"?" + query if query else ""}')
            target = sse_app if path.startswith(('/sse', '/messages', '/.well-known/oauth-protected-resource/sse')) \
                else http_app
            if scope['type'] == 'http' and not any(k == b'authorization' for k, _ in scope['headers']) and \
                    not path.startswith('/.well-known'):
                self.unauthorized += 1
            await target(scope, receive, send)
        self.serve(app)

    def _server(self, auth_server: AuthServer, path: str) -> MCPServer:
        server = MCPServer('protected', token_verifier=Verifier(auth_server.provider), auth=AuthSettings(
            issuer_url=auth_server.url, resource_server_url=f'{self.url}{path}',  # type: ignore[arg-type]
            required_scopes=['mcp'], validate_token_resource=False))

        @server.tool()
        def whoami() -> str:
            """Who the bearer token belongs to."""
            token = get_access_token()
            subject = (token.subject if token is not None else None) or 'nobody'
            self.subjects.append(subject)
            return f'you are {subject}'

        @server.tool()
        def fake_echo(text: str) -> str:
            """Echo the text back, prefixed with the caller's subject."""
            token = get_access_token()
            subject = (token.subject if token is not None else None) or 'nobody'
            self.subjects.append(subject)
            return f'{subject} says: {text}'
        return server

    @property
    def mcp_url(self) -> str:
        return f'{self.url}/mcp'

    @property
    def sse_url(self) -> str:
        return f'{self.url}/sse'
