"""What a chat platform's adapter does for the gateway; `slack.SlackAdapter` is the first one. Another platform is one
more module with these five members, registered in `ADAPTERS`."""
from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from typing import Literal, Protocol

import httpx


class PlatformError(Exception):
    """The platform refused a call (its own error code, never the token)."""


@dataclass(frozen=True)
class Inbound:
    """One request from the platform, parsed: a URL challenge to echo, a person's message, or something to ignore
    (the bot's own messages, edits, other event types)."""
    kind: Literal['challenge', 'message', 'ignored']
    event_id: str = ''
    challenge: str = ''
    user: str = ''  # the platform's id of the person who wrote
    text: str = ''
    conversation: str = ''  # the platform's channel id, where replies go
    thread: str = ''  # the thread the message is in (its own id when it starts one)


class Adapter(Protocol):
    name: str

    def verify(self, secret: str, headers: Mapping[str, str], body: bytes, now: float) -> str | None:
        """None for a genuine request, else why it is refused (headers keyed in lower case)."""

    def parse(self, body: bytes) -> Inbound:
        """Raises ValueError for a body that is not the platform's JSON."""

    async def post_message(self, client: httpx.AsyncClient, api_base: str, token: str, conversation: str,
                           thread: str, text: str) -> str:
        """Post `text` in the thread, split to the platform's limits; the id of the first message posted."""

    async def update_message(self, client: httpx.AsyncClient, api_base: str, token: str, conversation: str,
                             message: str, text: str) -> None:
        """Replace the text of a message posted earlier (the progress line)."""
