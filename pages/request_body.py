"""Reading a request body with a limit: a declared Content-Length over it is refused before anything is read, and a
chunked body stops being read as soon as it passes it (the API, the chat gateway's webhook)."""
from __future__ import annotations

from fastapi import Request


async def read_capped(request: Request, limit: int) -> bytes | None:
    """The body, or None when it is larger than `limit` bytes."""
    declared = request.headers.get('content-length', '')
    if declared.isdigit() and int(declared) > limit:
        return None
    body = bytearray()
    async for chunk in request.stream():
        body += chunk
        if len(body) > limit:
            return None
    return bytes(body)
