"""Connecting an MCP server's OAuth grant in Chromium: Settings → MCP authorizations → Connect goes to the real
authorization server (tests/oauth_servers.py, auto-approving), which sends the browser to the app's callback, which
stores the grant and returns to the page, now Connected; Disconnect revokes it at the authorization server. A
replayed callback URL shows why it is refused and stores nothing."""
from __future__ import annotations

from pathlib import Path

import pytest
from sqlmodel import select

from agor import auth, db, mcp_servers, user_secrets
from agor.config import load_settings
from agor.models import McpGrant, Role

from .app_server import log_in, running_app
from .conftest import PASSWORD
from .oauth_servers import AuthServer, ProtectedMcp


@pytest.fixture
def oauth():
    auth_server = AuthServer()
    protected = ProtectedMcp(auth_server)
    yield auth_server, protected
    protected.stop()
    auth_server.stop()


def grants(user_id: str) -> list[McpGrant]:
    with db.read() as session:
        return list(session.exec(select(McpGrant).where(McpGrant.user_id == user_id)).all())


def test_connect_in_the_browser_then_disconnect(browser, oauth, tmp_path: Path) -> None:
    auth_server, protected = oauth
    with running_app(tmp_path / 'app', AGOR_MCP_ALLOW_LOOPBACK='1') as server:
        db.init(server.database_url)
        settings = load_settings(data_dir=str(server.data_dir))
        user_secrets.init(settings)
        owner = auth.create_first_owner('owner@example.com', 'Olivia', PASSWORD)
        alice = auth.create_user(owner, 'alice@example.com', 'Alice', PASSWORD, Role.member)
        mcp_servers.save_server(owner, None, {'name': 'protected', 'transport': 'http', 'url': protected.mcp_url,
                                              'auth': 'oauth'}, True)
        page = browser.new_context(viewport={'width': 1200, 'height': 800}).new_page()
        log_in(page, server, 'alice@example.com', PASSWORD)
        page.goto(f'{server.url}/?settings=mcp-authorizations')
        page.get_by_text('protected', exact=True).wait_for()
        page.get_by_text('Not connected').wait_for()
        callbacks: list[str] = []
        page.on('request', lambda request: callbacks.append(request.url) if '/mcp-oauth/callback' in request.url
                else None)
        page.get_by_role('button', name='Connect').click()
        page.get_by_text('Connected', exact=True).wait_for(timeout=30000)
        assert page.url.endswith('/?settings=mcp-authorizations')
        assert len(callbacks) == 1 and callbacks[0].startswith(f'{server.url}/mcp-oauth/callback?')
        [grant] = grants(alice.id)
        assert grant.status == 'connected'
        assert not any(token in page.content() for token in auth_server.provider.access)

        page.goto(callbacks[0])  # the same callback again: refused, with the reason, nothing stored
        page.get_by_role('alert').wait_for()
        assert 'already used' in page.get_by_role('alert').inner_text()
        assert len(grants(alice.id)) == 1

        page.goto(f'{server.url}/?settings=mcp-authorizations')
        page.get_by_role('button', name='Disconnect').click()
        page.get_by_text('Not connected').wait_for()
        assert grants(alice.id) == [] and auth_server.provider.revoked
