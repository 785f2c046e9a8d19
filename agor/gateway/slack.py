"""Slack: the Events API's signed requests (HMAC-SHA256 of `v0:<timestamp>:<body>` with the app's signing secret,
sent as `X-Slack-Signature: v0=<hex>` with `X-Slack-Request-Timestamp`), `message` events, and the Web API's
chat.postMessage / chat.update with the bot token."""
from __future__ import annotations

import hashlib
import hmac
import json
import re
from collections.abc import Mapping

import httpx

from .platform import Inbound, PlatformError

REPLAY_SECONDS = 5 * 60
MESSAGE_LIMIT = 3500  # characters per posted message (Slack truncates text beyond 40,000, and advises under 4,000)
MENTION = re.compile(r'^\s*<@[A-Z0-9]+>\s*')


class SlackAdapter:
    name = 'slack'

    def verify(self, secret: str, headers: Mapping[str, str], body: bytes, now: float) -> str | None:
        signature, stamp = headers.get('x-slack-signature', ''), headers.get('x-slack-request-timestamp', '')
        if not signature or not stamp:
            return 'The request has no X-Slack-Signature or X-Slack-Request-Timestamp header.'
        if not stamp.isdigit():
            return 'X-Slack-Request-Timestamp is not a number.'
        if abs(now - int(stamp)) > REPLAY_SECONDS:
            return 'The request is more than 5 minutes old (or from the future): refused as a possible replay.'
        expected = 'v0=' + hmac.new(secret.encode(), b'v0:' + stamp.encode() + b':' + body, hashlib.sha256).hexdigest()
        if not hmac.compare_digest(expected.encode(), signature.encode()):
            return 'The signature does not match this channel\'s signing secret.'
        return None

    def parse(self, body: bytes) -> Inbound:
        payload = json.loads(body)
        if not isinstance(payload, dict):
            raise ValueError('not an object')
        if payload.get('type') == 'url_verification':
            return Inbound('challenge', challenge=str(payload.get('challenge', '')))
        event = payload.get('event')
        if payload.get('type') != 'event_callback' or not isinstance(event, dict):
            return Inbound('ignored')
        event_id = str(payload.get('event_id') or '')
        if (event.get('type') != 'message' or event.get('subtype') or event.get('bot_id')
                or not event.get('user') or not event.get('channel') or not event.get('ts') or not event_id):
            return Inbound('ignored', event_id=event_id)
        text = MENTION.sub('', str(event.get('text') or ''))
        text = text.replace('&lt;', '<').replace('&gt;', '>').replace('&amp;', '&')
        return Inbound('message', event_id=event_id, user=str(event['user']), text=text.strip(),
                       conversation=str(event['channel']), thread=str(event.get('thread_ts') or event['ts']))

    async def post_message(self, client: httpx.AsyncClient, api_base: str, token: str, conversation: str,
                           thread: str, text: str) -> str:
        first = ''
        for part in chunks(text):
            answer = await _call(client, api_base, token, 'chat.postMessage',
                                 {'channel': conversation, 'thread_ts': thread, 'text': part})
            first = first or str(answer.get('ts', ''))
        return first

    async def update_message(self, client: httpx.AsyncClient, api_base: str, token: str, conversation: str,
                             message: str, text: str) -> None:
        await _call(client, api_base, token, 'chat.update',
                    {'channel': conversation, 'ts': message, 'text': chunks(text)[0]})


def chunks(text: str, limit: int = MESSAGE_LIMIT) -> list[str]:
    """`text` in parts of at most `limit` characters, cut after a line where one fits."""
    parts, rest = [], text or ' '
    while len(rest) > limit:
        cut = rest.rfind('\n', 0, limit)
        cut = cut + 1 if cut > 0 else limit
        parts.append(rest[:cut])
        rest = rest[cut:]
    return [*parts, rest] if rest else parts


async def _call(client: httpx.AsyncClient, api_base: str, token: str, method: str, body: dict) -> dict:
    try:
        response = await client.post(f'{api_base}/{method}', json=body,
                                     headers={'Authorization': f'Bearer {token}'}, timeout=10)
        answer = response.json()
    except (httpx.HTTPError, ValueError) as error:
        raise PlatformError(f'Slack {method} failed: {type(error).__name__}') from None
    if not isinstance(answer, dict) or not answer.get('ok'):
        raise PlatformError(f'Slack {method} answered {answer.get("error") if isinstance(answer, dict) else "?"}')
    return answer
