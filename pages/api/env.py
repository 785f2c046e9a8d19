"""`/env`: the names of the caller's environment variables (Settings → Env Vars); values never leave the server."""
from __future__ import annotations

from fastapi import APIRouter
from pydantic import BaseModel

from agor import user_secrets

from .base import Actor


class EnvVarOut(BaseModel):
    name: str
    scope: str  # global: every session; session: only sessions that opt in
    updated_at: str


def routes(router: APIRouter) -> None:
    @router.get('/env', response_model=list[EnvVarOut], tags=['env'])
    def env_names(actor: Actor) -> list[dict]:
        """Your variables' names and scopes, never their values."""
        return [{'name': row['name'], 'scope': row['scope'], 'updated_at': row['updated_at']}
                for row in user_secrets.list_env(actor)]
