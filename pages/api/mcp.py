"""`/mcp-servers`: the instance's MCP servers and the caller's own OAuth grant for each (Settings → MCP
authorizations); never a secret or a token."""
from __future__ import annotations

from fastapi import APIRouter
from pydantic import BaseModel

from agor import mcp_servers

from .base import Actor


class McpServerOut(BaseModel):
    id: str
    name: str
    transport: str  # stdio | http | sse
    auth: str  # none | header | oauth
    enabled: bool
    url: str | None  # admins only (a URL may carry a key); null for everyone else
    grant: str | None  # for an OAuth server, your grant: connected | needs_reauth | not_connected; else null


def routes(router: APIRouter) -> None:
    @router.get('/mcp-servers', response_model=list[McpServerOut], tags=['mcp'])
    def servers(actor: Actor) -> list[McpServerOut]:
        """Every MCP server a session may use, and whether your own OAuth grant for it works."""
        grants = mcp_servers.grant_states(actor)
        return [McpServerOut(id=s['id'], name=s['name'], transport=s['transport'], auth=s['auth'],
                             enabled=s['enabled'], url=s.get('url'), grant=grants.get(s['id'], {}).get('status'))
                for s in mcp_servers.list_servers(actor)]
