"""Users' OAuth 2.1 grants for MCP servers: discovery, client registration, authorization code + PKCE, refresh and
revocation, owned by the app (not the mcp SDK's `OAuthClientProvider`, which keeps its state in one process's memory,
cannot refresh after a restart in 2.3.0 and has no revocation; see docs/security.md).

Discovery and the URL checks are in `mcp_discovery`; authlib gives the PKCE S256 challenge. The HTTP is plain `httpx`
(sync: these run in worker threads, never on the event loop).

- `authorize_url` (Connect): discovery, a client (the admin's pre-registered one, else RFC 7591 DCR, kept per
  (server, issuer, redirect URI)), then a pending flow row: the hash of `state`, the sealed PKCE verifier, 10
  minutes, one use.
- `finish` (the callback route): the flow is deleted as it is read (a replayed callback finds nothing), must belong
  to the logged-in user, `iss` is checked (RFC 9207), then the code is exchanged and the grant stored sealed.
- `access_token` (every proxied call): the grant's current access token, refreshed first when it expires within
  REFRESH_SKEW, or when the caller saw it refused (`stale`). ONE refresh at a time per (user, server): a lease on
  the grant row taken by compare-and-swap on `version`, so other threads and processes wait for its result instead
  of spending the same rotating refresh token. A response without a refresh token keeps the old one;
  `invalid_grant` marks the grant `needs_reauth` (`invalid_client` does not: the client, not the grant, was refused).
- `disconnect`: RFC 7009 revocation (refresh token, then access token) where offered, then the grant is deleted.
"""
from __future__ import annotations

import hashlib
import logging
import secrets
import time
from datetime import timedelta
from typing import Any
from urllib.parse import urlencode

import httpx
from authlib.oauth2.rfc7636 import create_s256_code_challenge
from sqlalchemy import delete, update
from sqlmodel import Session, col, select

from . import db, ids, mcp_sealed
from .auth import require
from .errors import DomainError, Forbidden, InvalidInput, NotFound
from .mcp_discovery import Discovery, McpAuthError, discover, http_client, json_object, reason, send, show
from .models import McpClient, McpGrant, McpPendingFlow, McpServer, Role, User, utcnow
from .user_secrets import box

log = logging.getLogger(__name__)
FLOW_SECONDS = 600
REFRESH_SKEW = timedelta(seconds=60)
LEASE = timedelta(seconds=30)
CALLBACK_PATH = '/mcp-oauth/callback'


class NeedsAuthorization(DomainError, status=401):
    """The user has no usable grant for the server: they connect (again) under Settings → MCP authorizations."""


# ---- connect --------------------------------------------------------------------------------------------------------

def authorize_url(actor: User, server_id: Any, redirect_uri: str, allow_loopback: bool) -> str:
    """Start connecting the actor's own grant (any active user): the authorization server's URL to send the browser
    to. `redirect_uri` is the app's callback as the browser reaches the app."""
    require(actor, Role.viewer, 'connect MCP servers')
    server = _oauth_server(server_id)
    found = discover(server.url or '', allow_loopback)
    client = _client_row(server, found, redirect_uri, allow_loopback)
    state, verifier = secrets.token_urlsafe(32), secrets.token_urlsafe(64)
    with db.transaction() as session:
        session.execute(delete(McpPendingFlow).where(col(McpPendingFlow.expires_at) < utcnow()))
        state_hash = _hash(state)
        flow = McpPendingFlow(state_hash=state_hash, user_id=actor.id, server_id=server.id, client_row=client.id,
                              resource=found.resource if server.send_resource else None,
                              expires_at=utcnow() + timedelta(seconds=FLOW_SECONDS))
        flow.code_verifier = mcp_sealed.seal(box(), flow, 'code_verifier', verifier)
        session.add(flow)
    params = {'response_type': 'code', 'client_id': client.client_id, 'redirect_uri': client.redirect_uri,
              'state': state, 'code_challenge': create_s256_code_challenge(verifier),
              'code_challenge_method': 'S256'}
    scope = server.scopes or found.scopes
    if scope:
        params['scope'] = scope
    if server.send_resource:
        params['resource'] = found.resource
    endpoint = found.metadata['authorization_endpoint']
    return f'{endpoint}{"&" if "?" in endpoint else "?"}{urlencode(params)}'


def finish(user: User | None, params: dict[str, str]) -> str:
    """The callback: `params` are the query the authorization server sent the browser back with, `user` the app's
    logged-in user (None: not logged in). Stores the grant and returns the server's name; a DomainError otherwise,
    with nothing stored. The flow is used up by the first callback that names it, whatever its outcome."""
    state = params.get('state') or ''
    with db.transaction() as session:
        flow = session.get(McpPendingFlow, _hash(state)) if state else None
        if flow is not None:
            gone = session.execute(delete(McpPendingFlow).where(col(McpPendingFlow.state_hash) == flow.state_hash))
            flow = flow if gone.rowcount == 1 else None  # another callback took it first
    if flow is None:
        raise InvalidInput('This authorization is unknown or was already used (the state does not match): '
                           'connect again from Settings → MCP authorizations.')
    if user is None or user.id != flow.user_id:
        raise Forbidden('This authorization was started by another account: log in as that account and connect '
                        'again.')
    if flow.expires_at.replace(tzinfo=utcnow().tzinfo) < utcnow():
        raise InvalidInput('This authorization took too long and expired: connect again.')
    with db.read() as session:
        client = session.get(McpClient, flow.client_row)
        server = session.get(McpServer, flow.server_id)
    if client is None or server is None:
        raise NotFound('This MCP server was removed meanwhile.')
    issuer = params.get('iss')
    if issuer is not None and issuer != client.issuer:
        raise McpAuthError(f'The answer came from the issuer {show(issuer)}, not {show(client.issuer)}: refused.')
    if issuer is None and client.metadata_.get('authorization_response_iss_parameter_supported'):
        raise McpAuthError('The answer does not name its issuer although the authorization server says it does: '
                           'refused.')
    if params.get('error'):
        detail = params.get('error_description') or ''
        raise McpAuthError(f'The authorization server refused: {_clean(params["error"])}'
                           f'{": " + _clean(detail) if detail else ""}.')
    if not params.get('code'):
        raise InvalidInput('The authorization server sent no code back.')
    verifier = mcp_sealed.unseal(box(), flow, 'code_verifier')
    form = {'grant_type': 'authorization_code', 'code': params['code'], 'redirect_uri': client.redirect_uri,
            'code_verifier': verifier}
    if flow.resource:
        form['resource'] = flow.resource
    tokens = _token_request(client, form)
    _store_grant(user.id, server.id, client.id, tokens, previous_refresh=None)
    return server.name


def _oauth_server(server_id: Any) -> McpServer:
    with db.read() as session:
        server = ids.load(session, McpServer, server_id, 'MCP server')
    if server.auth != 'oauth' or not server.enabled:
        raise InvalidInput(f'{server.name} does not use OAuth (or is disabled): there is nothing to connect.')
    return server


def _client_row(server: McpServer, found: Discovery, redirect_uri: str, allow_loopback: bool) -> McpClient:
    """The client for (server, issuer, redirect URI): the stored one, else the admin's or a new registration. Another
    redirect URI (the app opened by another address) gets a row of its own: the rows other grants refresh with are
    never rewritten for it."""
    with db.read() as session:
        row = session.exec(select(McpClient).where(McpClient.server_id == server.id, McpClient.issuer == found.issuer,
                                                   McpClient.redirect_uri == redirect_uri)).first()
    static = server.client_id is not None
    if row is not None and (row.source == 'static') == static and (not static or row.client_id == server.client_id):
        row.metadata_ = found.metadata
        return _save_client(row)
    row = row or McpClient(server_id=server.id, issuer=found.issuer, client_id='', redirect_uri=redirect_uri)
    row.metadata_ = found.metadata
    if static:
        row.source, row.client_id = 'static', server.client_id or ''
        secret = mcp_sealed.unseal(box(), server, 'client_secret')
        row.auth_method = 'client_secret_post' if secret else 'none'
    else:
        secret = _register(found, redirect_uri, server.scopes or found.scopes, row)
    row.client_secret = mcp_sealed.seal(box(), row, 'client_secret', secret)
    return _save_client(row)


def _save_client(row: McpClient) -> McpClient:
    with db.transaction() as session:
        merged = session.merge(row)
        session.flush()
        session.expunge(merged)
    return merged


def _register(found: Discovery, redirect_uri: str, scope: str | None, row: McpClient) -> str | None:
    """RFC 7591 dynamic client registration; sets the row's client id and method, returns the secret (if any)."""
    endpoint = found.metadata.get('registration_endpoint')
    if not endpoint:
        raise McpAuthError('The authorization server offers no dynamic client registration: an admin enters a '
                           'pre-registered client id (and secret) for this server.')
    body = {'redirect_uris': [redirect_uri], 'client_name': 'Agor', 'grant_types': ['authorization_code',
            'refresh_token'], 'response_types': ['code'], 'token_endpoint_auth_method': 'client_secret_post',
            'application_type': 'web'}
    if scope:
        body['scope'] = scope
    try:
        with http_client() as client:
            answer = send(client, 'POST', endpoint, 'The client registration answer', json=body)
    except httpx.HTTPError as error:
        raise McpAuthError(f'Client registration failed: {reason(error)}.') from None
    if answer.status_code not in (200, 201):
        raise McpAuthError(f'Client registration was refused (HTTP {answer.status_code}{_oauth_error(answer)}).')
    registered = json_object(answer, 'The client registration answer')
    if not isinstance(registered.get('client_id'), str) or not registered['client_id']:
        raise McpAuthError('The client registration answer has no client_id.')
    method = registered.get('token_endpoint_auth_method') or 'client_secret_post'
    if method not in ('none', 'client_secret_post', 'client_secret_basic'):
        raise McpAuthError(f'The registered client uses {show(method)}, which the app does not support.')
    secret = registered.get('client_secret')
    if method != 'none' and not isinstance(secret, str):
        raise McpAuthError('The client registration answer has no client_secret for its method.')
    row.client_id, row.auth_method, row.source = registered['client_id'], method, 'dcr'
    return secret if method != 'none' else None


# ---- tokens ---------------------------------------------------------------------------------------------------------

def _client_auth(client: McpClient, form: dict[str, str]) -> tuple[dict[str, str], httpx.BasicAuth | None]:
    """The form and HTTP auth of a request the app makes as the registered client: its id, and its secret (if it
    has one) as Basic auth or in the form, as the client was registered."""
    form = {**form, 'client_id': client.client_id}
    secret = mcp_sealed.unseal(box(), client, 'client_secret')
    if secret and client.auth_method == 'client_secret_basic':
        return form, httpx.BasicAuth(client.client_id, secret)
    if secret:
        form['client_secret'] = secret
    return form, None


def _token_request(client: McpClient, form: dict[str, str]) -> dict[str, Any]:
    """POST to the token endpoint with the client's authentication; the token response, or McpAuthError (its
    `invalid_grant` attribute says whether the grant itself was refused)."""
    form, auth = _client_auth(client, form)
    try:
        with http_client() as http:
            answer = send(http, 'POST', client.metadata_['token_endpoint'], 'The token response', data=form, auth=auth,
                          headers={'Accept': 'application/json'})
    except httpx.HTTPError as error:
        raise McpAuthError(f'The token endpoint is unreachable: {reason(error)}.') from None
    if answer.status_code != 200:
        problem = McpAuthError(f'The authorization server refused the token request (HTTP {answer.status_code}'
                               f'{_oauth_error(answer)}).')
        problem.invalid_grant = _error_code(answer) in ('invalid_grant', 'unauthorized_client')  # not the client's
        raise problem
    tokens = json_object(answer, 'The token response')
    if not isinstance(tokens.get('access_token'), str) or not tokens['access_token']:
        raise McpAuthError('The token response has no access_token.')
    if str(tokens.get('token_type', 'bearer')).lower() != 'bearer':
        raise McpAuthError(f'The token response is of type {show(tokens.get("token_type"))}, not Bearer.')
    return tokens


def _store_grant(user_id: str, server_id: str, client_row: str, tokens: dict[str, Any], *,
                 previous_refresh: str | None, version: int | None = None) -> bool:
    """Store a token response as the user's grant. With `version` (a refresh) only if the row is still at that
    version (compare-and-swap); a response without a refresh token keeps `previous_refresh`."""
    sealer, owner = box(), McpGrant(user_id=user_id, server_id=server_id)  # whose grant the tokens are sealed for
    refresh = tokens.get('refresh_token') if isinstance(tokens.get('refresh_token'), str) else previous_refresh
    expires_in = tokens.get('expires_in')
    values = {
        'client_row': client_row,
        'access_token': mcp_sealed.seal(sealer, owner, 'access_token', tokens['access_token']),
        'refresh_token': mcp_sealed.seal(sealer, owner, 'refresh_token', refresh),
        'expires_at': utcnow() + timedelta(seconds=int(expires_in)) if isinstance(expires_in, (int, float)) else None,
        'scope': tokens.get('scope') if isinstance(tokens.get('scope'), str) else None,
        'status': 'connected', 'last_error': None, 'refresh_lease': None, 'updated_at': utcnow()}
    with db.transaction() as session:
        if version is not None:
            changed = session.execute(update(McpGrant).where(
                col(McpGrant.user_id) == user_id, col(McpGrant.server_id) == server_id,
                col(McpGrant.version) == version).values(**values, version=version + 1))
            return changed.rowcount == 1
        grant = _grant(session, user_id, server_id)
        if grant is None:
            session.add(McpGrant(user_id=user_id, server_id=server_id, **values))
        else:
            session.execute(update(McpGrant).where(col(McpGrant.id) == grant.id)
                            .values(**values, version=grant.version + 1))
    return True


def access_token(user_id: str, server_id: str, *, stale: str | None = None) -> str:
    """The user's current access token for the server, refreshed first when it expires within REFRESH_SKEW or when
    it is `stale` (the caller saw it refused with a 401). NeedsAuthorization when there is no usable grant."""
    deadline = time.monotonic() + LEASE.total_seconds() + 5
    while True:
        with db.read() as session:
            grant = _grant(session, user_id, server_id)
            client = session.get(McpClient, grant.client_row) if grant is not None else None
        if grant is None or client is None:
            raise NeedsAuthorization('No grant: connect this MCP server under Settings → MCP authorizations.')
        if grant.status != 'connected':
            raise NeedsAuthorization(f'The grant needs to be authorized again: {grant.last_error or "refused"}.')
        token = mcp_sealed.unseal(box(), grant, 'access_token')
        if token != stale and not _expiring(grant):
            return token
        leased = _take_lease(grant)
        if leased:
            return _refresh(grant, client, token)
        if time.monotonic() > deadline:
            raise McpAuthError('A refresh of this grant is taking too long; try again.')
        time.sleep(0.05)  # another thread or process is refreshing it: its result is read next


def _expiring(grant: McpGrant) -> bool:
    if grant.expires_at is None:
        return False
    return grant.expires_at.replace(tzinfo=utcnow().tzinfo) - REFRESH_SKEW <= utcnow()


def _take_lease(grant: McpGrant) -> bool:
    """Compare-and-swap on the row's version: True for exactly one caller until the lease ends."""
    now = utcnow()
    with db.transaction() as session:
        taken = session.execute(update(McpGrant).where(
            col(McpGrant.id) == grant.id, col(McpGrant.version) == grant.version,
            (col(McpGrant.refresh_lease).is_(None)) | (col(McpGrant.refresh_lease) < now))
            .values(refresh_lease=now + LEASE, version=grant.version + 1))
    if taken.rowcount == 1:
        grant.version += 1
        return True
    return False


def _refresh(grant: McpGrant, client: McpClient, token: str) -> str:
    refresh = mcp_sealed.unseal(box(), grant, 'refresh_token')
    if refresh is None:
        _mark(grant, 'needs_reauth', 'the access token expired and there is no refresh token')
        raise NeedsAuthorization('The access token expired and cannot be refreshed: connect again.')
    try:
        tokens = _token_request(client, {'grant_type': 'refresh_token', 'refresh_token': refresh})
    except McpAuthError as error:
        if getattr(error, 'invalid_grant', False):
            _mark(grant, 'needs_reauth', error.message)
            raise NeedsAuthorization(f'Refreshing the grant was refused; connect again. {error.message}') from None
        _mark(grant, 'connected', None)  # a passing failure: the lease ends, the next call tries again
        raise
    _store_grant(grant.user_id, grant.server_id, client.id, tokens, previous_refresh=refresh, version=grant.version)
    log.info('refreshed the MCP grant of user %s for server %s', grant.user_id, grant.server_id)
    return tokens['access_token']


def _mark(grant: McpGrant, status: str, error: str | None) -> None:
    with db.transaction() as session:
        session.execute(update(McpGrant).where(col(McpGrant.id) == grant.id).values(
            status=status, last_error=error, refresh_lease=None, updated_at=utcnow()))


def mark_refused(user_id: str, server_id: str) -> None:
    """The MCP server refused a freshly refreshed token: the grant needs a new authorization."""
    with db.read() as session:
        grant = _grant(session, user_id, server_id)
    if grant is not None:
        _mark(grant, 'needs_reauth', 'the MCP server refused the token')


def disconnect(actor: User, server_id: Any) -> bool:
    """Revoke the actor's own grant at the authorization server (RFC 7009, where it offers it; refresh token first)
    and delete it. True when the authorization server confirmed the revocation."""
    require(actor, Role.viewer, 'disconnect MCP servers')
    with db.read() as session:
        server = ids.load(session, McpServer, server_id, 'MCP server')
        grant = _grant(session, actor.id, server.id)
        client = session.get(McpClient, grant.client_row) if grant is not None else None
    if grant is None:
        raise NotFound(f'You are not connected to {server.name}.')
    revoked = _revoke(grant, client) if client is not None else False
    with db.transaction() as session:
        session.execute(delete(McpGrant).where(col(McpGrant.id) == grant.id))
    return revoked


def _revoke(grant: McpGrant, client: McpClient) -> bool:
    endpoint = client.metadata_.get('revocation_endpoint')
    if not endpoint:
        return False
    sealer, revoked = box(), True
    for hint in ('refresh_token', 'access_token'):  # the hint names the column it is sealed in
        token = mcp_sealed.unseal(sealer, grant, hint)
        if not token:
            continue
        form, auth = _client_auth(client, {'token': token, 'token_type_hint': hint})
        try:
            with http_client() as http:
                revoked = send(http, 'POST', endpoint, 'The revocation answer', data=form, auth=auth) \
                    .status_code == 200 and revoked
        except (httpx.HTTPError, McpAuthError):
            revoked = False
    return revoked


def _grant(session: Session, user_id: str, server_id: str) -> McpGrant | None:
    return session.exec(select(McpGrant).where(McpGrant.user_id == user_id, McpGrant.server_id == server_id)).first()


def _hash(state: str) -> str:
    return hashlib.sha256(state.encode()).hexdigest()


def _error_code(answer: httpx.Response) -> str | None:
    try:
        body = answer.json()
    except ValueError:
        return None
    return body.get('error') if isinstance(body, dict) and isinstance(body.get('error'), str) else None


def _oauth_error(answer: httpx.Response) -> str:
    code = _error_code(answer)
    return f': {_clean(code)}' if code else ''


def _clean(text: str) -> str:
    """A value from a URL or answer, safe to show: printable, short."""
    return ''.join(ch for ch in str(text) if ch.isprintable())[:200]

