"""`/me`: the account the request acts as."""
from __future__ import annotations

from fastapi import APIRouter
from pydantic import BaseModel

from agor import mcp_servers

from .base import Actor


class MeOut(BaseModel):
    id: str
    email: str
    name: str
    role: str
    mcp_authenticated_server_ids: list[str]  # the OAuth MCP servers your grant works for


def routes(router: APIRouter) -> None:
    @router.get('/me', response_model=MeOut, tags=['me'])
    def me(actor: Actor) -> MeOut:
        """The account the API key (or login) acts as, with its role now."""
        return MeOut(id=actor.id, email=actor.email, name=actor.name, role=actor.role,
                     mcp_authenticated_server_ids=mcp_servers.authenticated_server_ids(actor))
