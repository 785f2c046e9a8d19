"""`/me`: the account the request acts as."""
from __future__ import annotations

from fastapi import APIRouter
from pydantic import BaseModel

from .base import Actor


class MeOut(BaseModel):
    id: str
    email: str
    name: str
    role: str


def routes(router: APIRouter) -> None:
    @router.get('/me', response_model=MeOut, tags=['me'])
    def me(actor: Actor) -> MeOut:
        """The account the API key (or login) acts as, with its role now."""
        return MeOut(id=actor.id, email=actor.email, name=actor.name, role=actor.role)
