"""Where the app may go and what an MCP server says about its authorization: the URL check (no private, internal or,
unless allowed, loopback addresses; names resolved), then discovery (RFC 9728 protected-resource metadata from the
401's `resource_metadata` or the well-known paths, then RFC 8414 / OIDC authorization-server metadata, in the spec's
order), with the mcp SDK's URL builders and pydantic models. Plain sync `httpx`: these run in worker threads."""
from __future__ import annotations

import ipaddress
import re
import socket
from dataclasses import dataclass
from typing import Any
from urllib.parse import urlparse

import httpx
from mcp.client.auth.utils import (
    build_oauth_authorization_server_metadata_discovery_urls,
    build_protected_resource_metadata_discovery_urls,
)
from mcp.shared.auth import OAuthMetadata, ProtectedResourceMetadata
from pydantic import ValidationError

from .errors import DomainError, InvalidInput

TIMEOUT = httpx.Timeout(10.0)
MAX_DOCUMENT = 256 * 1024


class McpAuthError(DomainError, status=502):
    """Discovery, registration, authorization or token exchange failed; the message says which and why."""


# ---- where the app may go -------------------------------------------------------------------------------------------

def check_url(url: str, allow_loopback: bool, what: str = 'URL') -> str:
    """`url` if the app may fetch it: https to a public address, or http(s) on loopback when the admin allows it
    (AGOR_MCP_ALLOW_LOOPBACK). Names are resolved: a name pointing at a private, link-local or loopback address is
    refused like the address itself."""
    parsed = urlparse(url) if isinstance(url, str) else None
    if parsed is None or parsed.scheme not in ('http', 'https') or not parsed.hostname:
        raise InvalidInput(f'The {what} {show(url)} is not an http(s) URL.')
    addresses = _addresses(parsed.hostname)
    loopback = bool(addresses) and all(address.is_loopback for address in addresses)
    if loopback and allow_loopback:
        return url
    if loopback:
        raise InvalidInput(f'The {what} {show(url)} is on this machine (loopback); an admin allows that only for '
                           'development (AGOR_MCP_ALLOW_LOOPBACK=1).')
    if any(not address.is_global for address in addresses):
        raise InvalidInput(f'The {what} {show(url)} points at a private or internal address, which the app does '
                           'not fetch.')
    if parsed.scheme != 'https':
        raise InvalidInput(f'The {what} {show(url)} must use https.')
    return url


def _addresses(host: str) -> list[ipaddress.IPv4Address | ipaddress.IPv6Address]:
    try:
        return [ipaddress.ip_address(host.strip('[]'))]
    except ValueError:
        pass
    if host.lower() == 'localhost' or host.lower().endswith('.localhost'):
        return [ipaddress.ip_address('127.0.0.1')]
    try:
        infos = socket.getaddrinfo(host, None)
    except OSError:
        raise McpAuthError(f'{host} cannot be resolved.') from None
    return [ipaddress.ip_address(info[4][0].split('%')[0]) for info in infos]


def show(url: Any) -> str:
    return repr(str(url)[:200])


# ---- discovery ------------------------------------------------------------------------------------------------------

@dataclass
class Discovery:
    issuer: str
    metadata: dict[str, Any]  # the authorization server's, as served
    resource: str  # the canonical resource (RFC 8707): the PRM's `resource`, else the server URL
    scopes: str | None


def discover(server_url: str, allow_loopback: bool) -> Discovery:
    """RFC 9728 protected-resource metadata (from the 401's `resource_metadata`, then the well-known paths), then the
    authorization server's metadata (RFC 8414, then OIDC, in the spec's order). Each URL is checked first."""
    check_url(server_url, allow_loopback, 'MCP server URL')
    with http_client() as client:
        hint = _probe(client, server_url)
        prm = None
        for url in build_protected_resource_metadata_discovery_urls(hint, server_url):
            prm = _document(client, url, allow_loopback, 'protected-resource metadata')
            if prm is not None:
                break
        if prm is not None:
            try:
                ProtectedResourceMetadata.model_validate(prm)
            except ValidationError:
                raise McpAuthError('The MCP server\'s protected-resource metadata is malformed (it needs `resource` '
                                   'and `authorization_servers`).') from None
            issuer, resource = str(prm['authorization_servers'][0]), str(prm['resource'])
            if not server_url.rstrip('/').startswith(resource.rstrip('/')):
                raise McpAuthError(f'The protected-resource metadata is for {show(resource)}, not for this server.')
            as_urls = build_oauth_authorization_server_metadata_discovery_urls(issuer, server_url)
        else:  # a server without RFC 9728: its own origin is the authorization server
            origin = urlparse(server_url)
            issuer, resource = f'{origin.scheme}://{origin.netloc}', server_url
            as_urls = build_oauth_authorization_server_metadata_discovery_urls(None, server_url)
        metadata = None
        for url in as_urls:
            metadata = _document(client, url, allow_loopback, 'authorization server metadata')
            if metadata is not None:
                break
    if metadata is None:
        raise McpAuthError(f'No authorization server metadata found for {show(issuer)}.')
    try:
        OAuthMetadata.model_validate(metadata)
    except ValidationError:
        raise McpAuthError('The authorization server metadata is malformed (it needs `issuer`, '
                           '`authorization_endpoint` and `token_endpoint`).') from None
    if not _same_issuer(metadata['issuer'], issuer):
        raise McpAuthError(f'The authorization server metadata names the issuer {show(metadata["issuer"])}, not '
                           f'{show(issuer)}: refused (it could be another server\'s).')
    if 'S256' not in (metadata.get('code_challenge_methods_supported') or []):
        raise McpAuthError('The authorization server does not support PKCE with S256, which OAuth 2.1 requires.')
    for name in ('authorization_endpoint', 'token_endpoint', 'registration_endpoint', 'revocation_endpoint'):
        if metadata.get(name):
            check_url(metadata[name], allow_loopback, name.replace('_', ' '))
    scopes = (prm or {}).get('scopes_supported') or metadata.get('scopes_supported')
    return Discovery(metadata['issuer'], metadata, resource, ' '.join(scopes) if scopes else None)


def _same_issuer(served: Any, expected: str) -> bool:
    """String equality (RFC 8414 section 3.3), except that an empty path equals '/' (the same URL, RFC 3986 6.2.3):
    `https://as.example` names the issuer `https://as.example/`."""
    if not isinstance(served, str):
        return False
    return served == expected or (served.rstrip('/') == expected.rstrip('/') and urlparse(served).path in ('', '/')
                                  and urlparse(expected).path in ('', '/'))


def http_client() -> httpx.Client:
    return httpx.Client(timeout=TIMEOUT, follow_redirects=False, trust_env=False)


def _probe(client: httpx.Client, server_url: str) -> str | None:
    """The `resource_metadata` URL of the server's 401 answer to an unauthenticated initialize, if it gives one."""
    try:
        answer = send(client, 'POST', server_url, 'The MCP server\'s answer', json={
            'jsonrpc': '2.0', 'id': 1, 'method': 'initialize', 'params': {
                'protocolVersion': '2025-06-18', 'capabilities': {}, 'clientInfo': {'name': 'agor', 'version': '1'}}},
            headers={'Accept': 'application/json, text/event-stream'})
    except httpx.HTTPError as error:
        raise McpAuthError(f'The MCP server is unreachable: {reason(error)}.') from None
    found = re.search(r'resource_metadata="([^"]+)"', answer.headers.get('www-authenticate', ''))
    return found.group(1) if answer.status_code == 401 and found else None


def _document(client: httpx.Client, url: str, allow_loopback: bool, what: str) -> dict[str, Any] | None:
    """A metadata document; None when this URL has none (3xx/4xx: the next one is tried); McpAuthError on a server
    error or a body that is not a JSON object."""
    check_url(url, allow_loopback, f'{what} URL')
    try:
        answer = send(client, 'GET', url, f'The {what} at {show(url)}', headers={'Accept': 'application/json'})
    except httpx.HTTPError as error:
        raise McpAuthError(f'The {what} at {show(url)} is unreachable: {reason(error)}.') from None
    if answer.status_code >= 500:
        raise McpAuthError(f'The {what} at {show(url)} answered HTTP {answer.status_code}.')
    if answer.status_code != 200:
        return None
    return json_object(answer, f'The {what} at {show(url)}')


def send(client: httpx.Client, method: str, url: str, what: str, **kwargs: Any) -> httpx.Response:
    """The answer with its body, read as it streams in and refused (McpAuthError) as soon as it passes MAX_DOCUMENT
    bytes, so a server cannot make the app read or hold an endless document."""
    with client.stream(method, url, **kwargs) as answer:
        body = bytearray()
        for chunk in answer.iter_bytes():
            body += chunk
            if len(body) > MAX_DOCUMENT:
                raise McpAuthError(f'{what} is too large (over {MAX_DOCUMENT // 1024} KB).')
    return httpx.Response(answer.status_code, headers=answer.headers, content=bytes(body), request=answer.request)


def json_object(answer: httpx.Response, what: str) -> dict[str, Any]:
    try:
        body = answer.json()
    except ValueError:
        body = None
    if not isinstance(body, dict):
        raise McpAuthError(f'{what} is not a JSON object.')
    return body


def reason(error: Exception) -> str:
    return type(error).__name__ if not str(error) else str(error)[:200]
