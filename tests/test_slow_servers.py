"""A server the app calls out to (an MCP server, an authorization server) that accepts and never answers holds a
worker thread until its timeout: many people connecting to it at once must not stall everyone else's actions."""
from __future__ import annotations

import asyncio
import socket
import threading

import httpx
from sqlmodel import select

from agor import db, mcp_servers, user_secrets
from agor.config import load_settings
from agor.models import CardPlacement, Role

from .app_server import login_cookie, running_app
from .conftest import seed_board
from .ws_client import WsPage

CONNECTS = 12  # more than Python's default worker pool (CPUs + 4, at most 32) on a machine of up to 8 CPUs


class HangingServer:
    """Accepts connections and reads them, never answers; counts those the app opened and those it gave up on."""

    def __init__(self) -> None:
        self.listener = socket.create_server(('127.0.0.1', 0))
        self.url = f'http://127.0.0.1:{self.listener.getsockname()[1]}/mcp'
        self.opened = self.closed = 0
        self.lock = threading.Lock()
        threading.Thread(target=self._accept, daemon=True).start()

    def _accept(self) -> None:
        while True:
            try:
                connection, _ = self.listener.accept()
            except OSError:
                return
            with self.lock:
                self.opened += 1
            threading.Thread(target=self._hold, args=(connection,), daemon=True).start()

    def _hold(self, connection: socket.socket) -> None:
        with connection:
            while connection.recv(4096):
                pass
        with self.lock:
            self.closed += 1

    def stop(self) -> None:
        self.listener.close()


async def test_a_team_moves_cards_while_many_connects_to_a_hanging_server_wait(tmp_path, git_repo):
    hanging = HangingServer()
    try:
        with running_app(tmp_path / 'app', AGOR_MCP_ALLOW_LOOPBACK='1') as server:
            db.init(server.database_url)
            settings = load_settings(data_dir=str(server.data_dir))
            team = seed_board(settings, git_repo, bob=Role.member)
            user_secrets.init(settings)
            mcp_servers.save_server(team.owner, None, {'name': 'stalled', 'transport': 'http', 'url': hanging.url,
                                                       'auth': 'oauth'}, True)
            alice = await asyncio.to_thread(login_cookie, server, team.owner.id)
            bob = await asyncio.to_thread(login_cookie, server, team.users['bob'].id)
            slug = f'/b/{team.board.slug}'
            async with httpx.AsyncClient(timeout=30) as http:
                tabs = [await WsPage(server, alice).open(http, f'{slug}?settings=mcp-authorizations')
                        for _ in range(CONNECTS)]
                for tab in tabs:
                    await tab.fire(await tab.wait_element(label='Connect', tag='q-btn'), 'click')
                board = await WsPage(server, bob).open(http, slug)
                # every Connect reached the hanging server (none waits for a thread another one holds) ...
                await board.wait_for(lambda: hanging.opened >= CONNECTS, timeout=8)
                await board.fire(board.one(event='card_move'), 'card_move', {'id': team.worktree.id, 'x': 40, 'y': 140})
                await board.wait_for(lambda: card_x(team) == 40, timeout=8)
                assert hanging.closed == 0  # ... and Bob's move was stored while they all still wait
                for page in (*tabs, board):
                    await page.close()
    finally:
        hanging.stop()


def card_x(team) -> float:
    with db.read() as session:
        return session.exec(select(CardPlacement).where(CardPlacement.worktree_id == team.worktree.id)).one().x
